"""pipeline.ingest.complete on real encoder output: complete files pass, every truncation fails."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from pipeline.datasets.sample_album import astronaut
from pipeline.ingest.complete import looks_complete
from pipeline.photos.decode import register_heif


def _encoded(fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(astronaut()).resize((128, 128)).save(buffer, fmt)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "HEIF"])
def test_complete_file_passes_and_every_truncation_fails(fmt: str, tmp_path: Path) -> None:
    assert register_heif(), "pillow-heif is a dependency: HEIC photos must decode"
    data = _encoded(fmt)
    path = tmp_path / "photo.img"
    path.write_bytes(data)
    assert looks_complete(path)
    cuts = sorted({1, 2, 8, 16, 100, len(data) // 3, len(data) // 2, len(data) - 2, len(data) - 1})
    for cut in cuts:
        path.write_bytes(data[:cut])
        assert not looks_complete(path), f"{fmt} cut at {cut} of {len(data)} bytes looked complete"


def test_jpeg_padding_after_the_end_marker_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "padded.jpg"
    path.write_bytes(_encoded("JPEG") + b"\x00" * 20)
    assert looks_complete(path)


def test_formats_without_an_end_marker_and_junk_never_look_complete(tmp_path: Path) -> None:
    tiff = tmp_path / "photo.tif"
    tiff.write_bytes(_encoded("TIFF"))
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"this is not an image, it only ends like one \xff\xd9")
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    assert not looks_complete(tiff) and not looks_complete(junk) and not looks_complete(empty)
    assert not looks_complete(tmp_path / "missing.jpg")
