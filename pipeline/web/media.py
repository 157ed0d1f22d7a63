"""Pictures (GET): thumbnails of photos, face crops and reference faces, by database id only.

``/media/photos/{id}/{size}.jpg``, ``/media/faces/{id}/{size}.jpg``,
``/media/references/{id}/{size}.jpg``. The id must be a row; the file is the one the row names
and must still hash to the row's ``sha256``. Responses carry an ``ETag`` (content hash + variant)
and ``Cache-Control: private, max-age=86400``; a matching ``If-None-Match`` gets 304.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, Response
from sqlalchemy import select
from sqlmodel import col

from pipeline.store.models import Face, Photo, Reference, os_path
from pipeline.web.thumbnails import SIZES, Picture, ThumbnailError, cache_file, thumbnail

router = APIRouter(prefix="/media")
CACHE_CONTROL = "private, max-age=86400"


def _serve(request: Request, picture: Picture | None, size: int, what: str) -> Response:
    if picture is None:
        raise HTTPException(404, f"no {what}")
    if size not in SIZES:
        raise HTTPException(404, f"no thumbnail size {size}; sizes: {', '.join(map(str, SIZES))}")
    cache_dir = request.app.state.thumbnail_dir
    etag = '"' + cache_file(cache_dir, picture, size).stem + '"'
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    try:
        path = thumbnail(cache_dir, picture, size, request.app.state.settings.max_image_pixels)
    except ThumbnailError as exc:
        raise HTTPException(404, str(exc)) from None
    return FileResponse(path, media_type="image/jpeg", headers=headers)


@router.get("/photos/{photo_id}/{size}.jpg")
def photo_thumbnail(request: Request, photo_id: int, size: int) -> Response:
    with request.app.state.read_engine.connect() as conn:
        row = conn.execute(
            select(col(Photo.path), col(Photo.path_bytes), col(Photo.sha256), col(Photo.hash_kind)).where(
                col(Photo.id) == photo_id
            )
        ).first()
    picture = Picture(os_path(row[0], row[1]), row[2], hash_kind=row[3]) if row else None
    return _serve(request, picture, size, f"photo with id {photo_id}")


@router.get("/faces/{face_id}/{size}.jpg")
def face_crop(request: Request, face_id: int, size: int) -> Response:
    with request.app.state.read_engine.connect() as conn:
        row = conn.execute(
            select(
                col(Photo.path),
                col(Photo.path_bytes),
                col(Photo.sha256),
                col(Photo.hash_kind),
                col(Face.x),
                col(Face.y),
                col(Face.w),
                col(Face.h),
            )
            .join(Photo, col(Photo.id) == col(Face.photo_id))
            .where(col(Face.id) == face_id)
        ).first()  # fmt: skip - the box's four columns on one line
    picture = Picture(os_path(row[0], row[1]), row[2], (row[4], row[5], row[6], row[7]), row[3]) if row else None
    return _serve(request, picture, size, f"face with id {face_id}")


@router.get("/references/{reference_id}/{size}.jpg")
def reference_face(request: Request, reference_id: int, size: int) -> Response:
    with request.app.state.read_engine.connect() as conn:
        row = conn.execute(
            select(
                col(Reference.stored_path),
                col(Reference.sha256),
                col(Reference.x),
                col(Reference.y),
                col(Reference.w),
                col(Reference.h),
            ).where(col(Reference.id) == reference_id)
        ).first()
    picture = Picture(row[0], row[1], (row[2], row[3], row[4], row[5])) if row else None
    return _serve(request, picture, size, f"reference with id {reference_id}")
