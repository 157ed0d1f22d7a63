"""A real, small file system for disk-full tests: a tmpfs mounted on a temporary folder (needs
root and permission to mount; the tests that use it are skipped with the reason otherwise)."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


class SmallDisk:
    """A mounted tmpfs of ``size_mb``; :meth:`fill` takes every free byte, :meth:`free` gives it back."""

    def __init__(self, mountpoint: Path) -> None:
        self.mountpoint = mountpoint
        self.filler = mountpoint / "filler.bin"

    def fill(self) -> None:
        """Write a filler file until the file system reports ENOSPC."""
        chunk = b"\0" * (1 << 20)
        with open(self.filler, "ab", buffering=0) as handle:
            while True:
                try:
                    handle.write(chunk)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    if len(chunk) == 1:
                        return
                    chunk = chunk[: len(chunk) // 2]

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)


def mount_small_disk(path: Path, size_mb: int = 48) -> Iterator[SmallDisk]:
    """Generator for a fixture: mount, yield, unmount (lazily, so a straggler cannot block it)."""
    if os.geteuid() != 0:
        pytest.skip("disk-full tests mount a small tmpfs and need root")
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(path)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield SmallDisk(path)
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)
