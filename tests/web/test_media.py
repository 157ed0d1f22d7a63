"""Thumbnails: made on demand, EXIF-rotated, cached by content hash, HTTP caching headers; only
database rows are served (paths, `..`, symlinks and unknown ids get nothing)."""

from __future__ import annotations

import io
import os
from pathlib import Path

from PIL import Image
from sqlalchemy import text

from tests.web.conftest import Album, client_for


def _face_id(album: Album) -> int:
    from pipeline.store.db import get_engine

    with get_engine(album.settings.db_url).connect() as conn:
        return int(conn.execute(text("SELECT min(id) FROM faces")).scalar_one())


def test_thumbnail_rotated_cached_with_etag(shared_album: Album) -> None:
    client = client_for(shared_album)
    photo_id = shared_album.photo_ids["grace-sideways.jpg"]
    response = client.get(f"/media/photos/{photo_id}/320.jpg")
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    image = Image.open(io.BytesIO(response.content))
    stored = Image.open(shared_album.folder / "grace-sideways.jpg")
    assert stored.width > stored.height  # stored sideways ...
    assert image.height > image.width and max(image.size) == 320  # ... shown upright
    etag = response.headers["etag"]
    assert "max-age" in response.headers["cache-control"]
    cached = list((shared_album.data_dir / "thumbnails").rglob("*-320.jpg"))
    assert len(cached) == 1 and etag.strip('"') == cached[0].stem
    again = client.get(f"/media/photos/{photo_id}/320.jpg", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""


def test_face_crop_and_reference(shared_album: Album) -> None:
    client = client_for(shared_album)
    face = client.get(f"/media/faces/{_face_id(shared_album)}/160.jpg")
    assert face.status_code == 200 and max(Image.open(io.BytesIO(face.content)).size) <= 160
    assert client.get("/media/references/1/160.jpg").status_code == 200


def test_only_database_rows_are_served(shared_album: Album) -> None:
    client = client_for(shared_album)
    photo_id = shared_album.photo_ids["coffee.jpg"]
    for url in [
        "/media/photos/999999/320.jpg",
        f"/media/photos/{photo_id}/321.jpg",
        "/media/photos/..%2F..%2Fetc%2Fpasswd/320.jpg",
        "/media/photos/../../etc/passwd",
        "/media/photos/%2Fetc%2Fpasswd/320.jpg",
        "/media/faces/999999/160.jpg",
        "/media/references/999999/160.jpg",
        "/static/../pipeline.db",
        "/static/%2e%2e/app.py",
    ]:
        response = client.get(url)
        assert response.status_code in (400, 404), url
        assert b"root:" not in response.content and b"SQLite" not in response.content, url


def test_a_file_swapped_for_a_symlink_is_not_served(album: Album, tmp_path: Path) -> None:
    client = client_for(album)
    target = album.folder / "coffee.jpg"
    secret = tmp_path / "secret.jpg"
    Image.new("RGB", (50, 50), "red").save(secret)
    target.unlink()
    os.symlink(secret, target)
    response = client.get(f"/media/photos/{album.photo_ids['coffee.jpg']}/320.jpg")
    assert response.status_code == 404 and "changed since it was tagged" in response.text
    target.unlink()
    response = client.get(f"/media/photos/{album.photo_ids['coffee.jpg']}/320.jpg")
    assert response.status_code == 404 and "gone" in response.text
