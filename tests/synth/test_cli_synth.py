"""`pipeline synth` from the command line, on the tiny random diffusers pipeline (offline)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from pipeline.datasets.release import load_identity_folders
from pipeline.synth.tiny import build_tiny_synth_pipeline, weight_name_for
from tests.conftest import cli


@pytest.mark.torch  # the tiny diffusers pipeline
def test_synth_command_writes_identity_folders(tmp_path: Path) -> None:
    root = build_tiny_synth_pipeline(tmp_path / "tiny")
    faces = tmp_path / "faces"
    faces.mkdir()
    for name, colour in (("ann", (200, 120, 90)), ("bob", (60, 90, 200))):
        Image.new("RGB", (64, 64), colour).save(faces / f"{name}.png")
    proc = cli(
        "synth",
        "--faces",
        str(faces),
        "--out",
        str(tmp_path / "out"),
        "--n",
        "2",
        "--steps",
        "2",
        "--size",
        "32",
        "--device",
        "cpu",
        "--no-safety-checker",
        "--base-model",
        str(root / "base"),
        "--ip-adapter",
        str(root / "ip-adapter"),
        "--ip-adapter-weight",
        weight_name_for("plus-face"),
    )
    dataset = load_identity_folders(tmp_path / "out")
    assert sorted(i.name for i in dataset.identities) == ["ann", "bob"], proc.stdout
    assert all(len(i.queries) == 2 for i in dataset.identities) and not dataset.problems
    manifest = json.loads((tmp_path / "out" / "synth.json").read_text())
    assert manifest, "manifest written"
    missing = cli("synth", "--faces", str(tmp_path / "nope"), "--out", str(tmp_path / "o2"), check=False)
    assert missing.returncode == 1 and "not a folder" in missing.stderr
