"""pipeline.photos: path filters, hashing, decoding of real images, and every way a file can be bad."""

from __future__ import annotations

import hashlib
import struct
import subprocess
import sys
import zlib
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from PIL import ExifTags, Image, ImageFile, features
from skimage import data

from pipeline.photos.decode import DecodedPhoto, PhotoError, decode_photo, probe_photo
from pipeline.photos.files import IMAGE_SUFFIXES, is_candidate, sha256_file

LIMIT = 120_000_000  # the default PIPELINE_MAX_IMAGE_PIXELS


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    """A real photo, cropped to 320 wide x 448 tall so a 90-degree turn changes the shape."""
    return data.astronaut()[32:480, 96:416].copy()


def _exif(
    orientation: int | None = None, original: str | None = None, offset: str | None = None, plain: str | None = None
) -> Image.Exif:
    exif = Image.Exif()
    if orientation is not None:
        exif[ExifTags.Base.Orientation] = orientation
    if plain is not None:
        exif[ExifTags.Base.DateTime] = plain
    sub = exif.get_ifd(ExifTags.IFD.Exif)
    if original is not None:
        sub[ExifTags.Base.DateTimeOriginal] = original
    if offset is not None:
        sub[ExifTags.Base.OffsetTimeOriginal] = offset
    return exif


def _diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


# -- filters ---------------------------------------------------------------------------------

ROOT = Path("/library")


@pytest.mark.parametrize(
    ("relative", "expected"),
    [
        ("a.jpg", True),
        ("A.JPG", True),
        ("2024/trip/b.jpeg", True),
        ("c.PNG", True),
        ("d.webp", True),
        ("e.heic", True),
        ("f.HEIF", True),
        ("g.tif", True),
        ("h.TIFF", True),
        ("album.v2/i.jpg", True),
        ("notes.txt", False),
        ("anim.gif", False),
        ("raw.cr2", False),
        ("noext", False),
        (".hidden.jpg", False),
        (".album/a.jpg", False),
        ("._a.jpg", False),
        ("~a.jpg", False),
        ("~syncthing~a.jpg.tmp", False),
        ("a.jpg.part", False),
        ("a.JPG.PART", False),
        ("a.jpg.partial", False),
        ("a.jpg.crdownload", False),
        ("a.jpg.download", False),
        ("a.tmp", False),
        ("a.jpg.temp", False),
        ("a.jpg.!qB", False),
        ("a.jpg.swp", False),
        ("a.jpg.~tmp", False),
        ("a.jpg~", False),
        (".a.jpg.Xk3s9Q", False),
        (".syncthing.a.jpg.tmp", False),
        (".~lock.a.jpg#", False),
        ("@eaDir/a.jpg/SYNOPHOTO_THUMB_XL.jpg", False),
        ("#recycle/a.jpg", False),
        ("$RECYCLE.BIN/S-1-5/a.jpg", False),
        ("Thumbs.db", False),
        ("sub.tmp/a.jpg", False),
        ("x/.stversions/a.jpg", False),
    ],
)
def test_is_candidate_table(relative: str, expected: bool) -> None:
    assert is_candidate(ROOT / relative, ROOT) is expected
    assert is_candidate(ROOT / relative) is expected  # the root has no ignored component


def test_is_candidate_checks_only_below_root() -> None:
    inside_hidden = Path("/home/u/.local/share/photos/a.jpg")
    assert is_candidate(inside_hidden, Path("/home/u/.local/share/photos"))
    assert not is_candidate(inside_hidden)  # without a root every component counts
    assert not is_candidate(Path("/elsewhere/a.jpg"), ROOT)
    assert not is_candidate(ROOT, ROOT)
    assert {".jpg", ".heic", ".tiff"} <= IMAGE_SUFFIXES


def test_sha256_file_streams_large_files(tmp_path: Path) -> None:
    payload = np.random.default_rng(0).bytes(3 * 1024 * 1024 + 17)
    target = tmp_path / "big.bin"
    target.write_bytes(payload)
    assert sha256_file(target) == hashlib.sha256(payload).hexdigest()
    with pytest.raises(FileNotFoundError):
        sha256_file(tmp_path / "missing.jpg")


# -- decoding real images ----------------------------------------------------------------------


def test_jpeg_exif_orientation_and_dates(tmp_path: Path, astronaut: np.ndarray) -> None:
    path = tmp_path / "rotated.jpg"
    exif = _exif(6, original="2021:07:04 15:30:00", offset="+02:00", plain="2022:01:01 00:00:00")
    Image.fromarray(astronaut).save(path, quality=95, exif=exif)

    photo = decode_photo(path, LIMIT)
    assert isinstance(photo, DecodedPhoto) and photo.format == "JPEG"
    assert photo.image.mode == "RGB"
    assert (photo.width, photo.height) == (448, 320) == photo.image.size  # stored 320x448
    pixels = np.asarray(photo.image)
    clockwise = np.rot90(astronaut, k=-1)  # orientation 6: turn 90 degrees clockwise to view
    assert _diff(pixels, clockwise) < 4
    assert _diff(pixels, np.rot90(astronaut, k=1)) > 20  # the wrong turn is clearly different
    assert photo.taken_at == datetime(2021, 7, 4, 15, 30, tzinfo=timezone(timedelta(hours=2)))
    assert photo.taken_at_tz_known
    assert probe_photo(path, LIMIT) == (448, 320, photo.taken_at)


def test_taken_at_falls_back_to_datetime_labelled_utc(tmp_path: Path, astronaut: np.ndarray) -> None:
    path = tmp_path / "plain.jpg"
    Image.fromarray(astronaut).save(path, exif=_exif(plain="2019:12:31 23:59:58"))
    photo = decode_photo(path, LIMIT)
    assert photo.taken_at == datetime(2019, 12, 31, 23, 59, 58, tzinfo=UTC)
    assert not photo.taken_at_tz_known
    assert (photo.width, photo.height) == (320, 448)

    bogus = tmp_path / "bogus.jpg"
    Image.fromarray(astronaut).save(bogus, exif=_exif(original="0000:00:00 00:00:00"))
    assert decode_photo(bogus, LIMIT).taken_at is None
    no_exif = tmp_path / "none.png"
    Image.fromarray(astronaut).save(no_exif)
    assert decode_photo(no_exif, LIMIT).taken_at is None


def test_png_alpha_is_composited_on_white(tmp_path: Path) -> None:
    rgba = np.zeros((20, 30, 4), np.uint8)
    rgba[:, :15] = (200, 10, 10, 255)  # opaque red left half; right half fully transparent black
    path = tmp_path / "alpha.png"
    Image.fromarray(rgba, "RGBA").save(path)
    photo = decode_photo(path, LIMIT)
    assert photo.image.mode == "RGB" and photo.image.size == (30, 20)
    assert photo.image.getpixel((2, 2)) == (200, 10, 10)
    assert photo.image.getpixel((25, 2)) == (255, 255, 255)


def test_png_palette_with_and_without_transparency(tmp_path: Path, astronaut: np.ndarray) -> None:
    palette = Image.fromarray(astronaut).convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    plain = tmp_path / "palette.png"
    palette.save(plain)
    photo = decode_photo(plain, LIMIT)
    assert photo.image.mode == "RGB"
    assert _diff(np.asarray(photo.image), astronaut) < 12

    transparent = tmp_path / "palette_t.png"
    index = palette.getpixel((0, 0))
    palette.save(transparent, transparency=index)
    photo = decode_photo(transparent, LIMIT)
    assert photo.image.getpixel((0, 0)) == (255, 255, 255)


def test_png_16bit_grayscale_is_scaled_not_clipped(tmp_path: Path) -> None:
    ramp = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (8, 1))
    path = tmp_path / "gray16.png"
    Image.fromarray(ramp).save(path)
    assert Image.open(path).mode.startswith("I")  # really a 16-bit file
    pixels = np.asarray(decode_photo(path, LIMIT).image)
    assert pixels.shape == (8, 64, 3)
    assert np.array_equal(pixels[..., 0], pixels[..., 2])
    assert abs(int(pixels[0, 32, 0]) - (int(ramp[0, 32]) >> 8)) <= 1
    assert pixels[0, 0, 0] == 0 and pixels[0, -1, 0] == 255
    assert (pixels[0, :, 0] < 250).sum() > 50  # a ramp, not everything clipped to white


@pytest.mark.skipif(not features.check("webp"), reason="Pillow built without WebP")
def test_webp(tmp_path: Path, astronaut: np.ndarray) -> None:
    path = tmp_path / "photo.webp"
    Image.fromarray(astronaut).save(path, quality=90)
    photo = decode_photo(path, LIMIT)
    assert photo.format == "WEBP" and (photo.width, photo.height) == (320, 448)
    assert _diff(np.asarray(photo.image), astronaut) < 6


def test_tiff_cmyk_and_grayscale_jpeg(tmp_path: Path, astronaut: np.ndarray) -> None:
    tiff = tmp_path / "scan.tif"
    Image.fromarray(astronaut).convert("CMYK").save(tiff)
    photo = decode_photo(tiff, LIMIT)
    assert photo.format == "TIFF" and photo.image.mode == "RGB"
    assert _diff(np.asarray(photo.image), astronaut) < 6

    gray = tmp_path / "gray.jpg"
    Image.fromarray(astronaut).convert("L").save(gray)
    photo = decode_photo(gray, LIMIT)
    assert photo.image.mode == "RGB" and photo.image.size == (320, 448)


def _heif_encoder_available() -> bool:
    try:
        import pillow_heif
    except ImportError:
        return False
    return bool(pillow_heif.libheif_info().get("HEIF"))  # names the HEVC encoder, "" if none


@pytest.mark.skipif(not _heif_encoder_available(), reason="pillow-heif has no HEVC encoder here")
def test_heic_round_trip(tmp_path: Path, astronaut: np.ndarray) -> None:
    import pillow_heif

    path = tmp_path / "IMG_0001.HEIC"
    pillow_heif.from_pillow(Image.fromarray(astronaut)).save(
        path, quality=90, exif=_exif(6, original="2023:05:06 07:08:09", offset="-05:00").tobytes()
    )
    photo = decode_photo(path, LIMIT)
    assert photo.format == "HEIF" and photo.image.mode == "RGB"
    assert (photo.width, photo.height) == (448, 320)  # orientation honoured exactly once
    assert _diff(np.asarray(photo.image), np.rot90(astronaut, k=-1)) < 6
    assert photo.taken_at == datetime(2023, 5, 6, 7, 8, 9, tzinfo=timezone(timedelta(hours=-5)))
    assert probe_photo(path, LIMIT)[:2] == (448, 320)


# -- bad files ---------------------------------------------------------------------------------


def _png_header_only(width: int, height: int) -> bytes:
    """A valid PNG signature + IHDR claiming ``width`` x ``height`` RGB, a tiny IDAT, IEND."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.touch()
    with pytest.raises(PhotoError) as info:
        decode_photo(path, LIMIT)
    assert info.value.reason == "empty file (0 bytes)"
    assert info.value.path == path and str(path) in str(info.value)


def test_truncated_jpeg(tmp_path: Path, astronaut: np.ndarray) -> None:
    whole = tmp_path / "whole.jpg"
    Image.fromarray(astronaut).save(whole, quality=95)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    assert probe_photo(cut, LIMIT)[:2] == (320, 448)  # the header alone looks fine
    with pytest.raises(PhotoError) as info:
        decode_photo(cut, LIMIT)
    assert info.value.reason.startswith("truncated or corrupt image:")


def test_text_file_named_jpg(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("shopping list: milk, eggs\n")
    with pytest.raises(PhotoError) as info:
        decode_photo(path, LIMIT)
    assert info.value.reason == "not an image (unrecognised format)"


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize(("width", "height"), [(20_000, 10_000), (11_000, 11_000)])
def test_decompression_bomb_refused_from_header(tmp_path: Path, width: int, height: int) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header_only(width, height))  # ~150 bytes on disk
    with pytest.raises(PhotoError) as info:
        decode_photo(path, LIMIT)
    assert info.value.reason == (f"image too large: {width * height} pixels > limit {LIMIT} (decompression-bomb guard)")
    with pytest.raises(PhotoError, match="image too large"):
        probe_photo(path, LIMIT)


def test_small_max_pixels_refuses_real_photo(tmp_path: Path, astronaut: np.ndarray) -> None:
    path = tmp_path / "photo.jpg"
    Image.fromarray(astronaut).save(path)
    with pytest.raises(PhotoError, match=r"image too large: 143360 pixels > limit 143359 "):
        decode_photo(path, 320 * 448 - 1)
    assert decode_photo(path, 320 * 448).width == 320


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning")
@pytest.mark.parametrize(
    "content",
    [
        b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4,  # JPEG magic, garbage after
        b"\x89PNG\r\n\x1a\n" + b"\0" * 100,  # PNG signature, broken chunks
        b"RIFF\x10\0\0\0WEBPVP8 " + b"\1" * 40,  # WebP header, garbage payload
        b"II*\0" + b"\xff" * 64,  # TIFF header, garbage IFD
        b"\0\0\0\x18ftypheic" + b"\0" * 64,  # HEIC brand, nothing else
    ],
    ids=["jpeg", "png", "webp", "tiff", "heic"],
)
def test_garbage_with_magic_is_photo_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.jpg"
    path.write_bytes(content)
    with pytest.raises(PhotoError):
        decode_photo(path, LIMIT)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(PhotoError, match="file not found"):
        decode_photo(tmp_path / "gone.jpg", LIMIT)
    folder = tmp_path / "folder.jpg"
    folder.mkdir()
    with pytest.raises(PhotoError, match="cannot read file"):
        decode_photo(folder, LIMIT)


def test_no_global_pil_state_changed(tmp_path: Path, astronaut: np.ndarray) -> None:
    before = (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES)
    path = tmp_path / "p.jpg"
    Image.fromarray(astronaut).save(path)
    decode_photo(path, LIMIT)
    with pytest.raises(PhotoError):
        decode_photo(path, 10)
    assert (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES) == before


def test_import_does_no_work() -> None:
    code = (
        "import sys, pipeline.photos.files, pipeline.photos.decode, pipeline.ingest.watcher; "
        "assert 'pillow_heif' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
