"""The changes (POST): rename, merge and forget a person; name a face (or several), say who a face
is not, mark it unknown; retry failed photos. Each checks the CSRF token, runs one transaction
through :mod:`pipeline.web.changes` and redirects back with a message (POST-redirect-GET)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from pipeline.web import changes, security
from pipeline.web.rendering import set_flash

if TYPE_CHECKING:
    from sqlmodel import Session


async def verify_csrf(request: Request) -> None:
    """Refuse a POST whose form token does not match its cookie, or that comes from another origin."""
    form = await request.form()
    field = form.get(security.CSRF_FIELD)
    own_origin = f"{request.url.scheme}://{request.headers.get('host', '')}"
    if not security.csrf_ok(
        request.cookies.get(security.CSRF_COOKIE),
        field if isinstance(field, str) else None,
        request.headers.get("origin"),
        own_origin,
    ):
        raise HTTPException(403, "this form has expired or came from another site; reload the page and try again")


router = APIRouter(dependencies=[Depends(verify_csrf)])


def _done(target: str, message: str, applied: changes.Applied) -> Response:
    """Redirect to ``target`` (POST-redirect-GET) with ``message`` and what happens next."""
    summary = applied.summary()
    return set_flash(RedirectResponse(target, status_code=303), f"{message}; {summary}" if summary else message)


@router.post("/people/{person_id}/rename")
def rename(request: Request, person_id: int, name: str = Form(..., max_length=10_000)) -> Response:
    from pipeline.people.changes import rename as do_rename

    settings = request.app.state.settings
    applied = changes.apply(settings, lambda s: do_rename(s, changes.person_name(s, person_id), name))
    return _done(f"/people/{person_id}", f"renamed to {' '.join(name.split())}", applied)


@router.post("/people/{person_id}/merge")
def merge(request: Request, person_id: int, into: str = Form(..., max_length=10_000)) -> Response:
    from pipeline.people.changes import merge as do_merge
    from pipeline.people.registry import get_person

    settings = request.app.state.settings
    target: list[int] = []

    def change(session: Session) -> list[int]:
        target.append(get_person(session, into).id or 0)
        return do_merge(session, changes.person_name(session, person_id), into)

    applied = changes.apply(settings, change)
    return _done(f"/people/{target[0]}", f"merged into {' '.join(into.split())}", applied)


@router.post("/people/{person_id}/forget")
def forget(request: Request, person_id: int) -> Response:
    from pipeline.people.changes import forget as do_forget

    settings = request.app.state.settings
    names: list[str] = []

    def change(session: Session) -> list[int]:
        names.append(changes.person_name(session, person_id))
        return do_forget(session, names[0])

    applied = changes.apply(settings, change)
    return _done("/people", f"forgot {names[0]}", applied)


@router.post("/faces/{face_id}/name")
def name_face(
    request: Request, face_id: int, name: str = Form(..., max_length=10_000), back: str = Form("")
) -> Response:
    settings = request.app.state.settings
    applied = changes.apply(settings, lambda s: changes.name_face(s, settings, face_id, name))
    return _done(_local(back, "/unknown"), f"face {face_id} is {' '.join(name.split())}", applied)


@router.post("/faces/name")
async def name_faces(request: Request) -> Response:
    """Name several faces at once (checkboxes ``face`` on the Unknown faces page)."""
    form = await request.form()
    name = form.get("name")
    face_ids = [v for v in form.getlist("face") if isinstance(v, str)]
    if not isinstance(name, str) or not name.strip():
        raise HTTPException(400, "type the name of the person these faces show")
    if not face_ids or not all(v.isdigit() for v in face_ids):
        raise HTTPException(400, "tick at least one face to name")
    settings = request.app.state.settings

    def change(session: Session) -> list[int]:
        return sorted({pid for fid in face_ids for pid in changes.name_face(session, settings, int(fid), name)})

    applied = changes.apply(settings, change)
    return _done("/unknown", f"{len(face_ids)} face(s) named {' '.join(name.split())}", applied)


@router.post("/faces/{face_id}/not")
def face_not(
    request: Request, face_id: int, name: str = Form(..., max_length=10_000), back: str = Form("")
) -> Response:
    applied = changes.apply(request.app.state.settings, lambda s: changes.face_not(s, face_id, name))
    return _done(_local(back, "/unknown"), f"face {face_id} is not {name}", applied)


@router.post("/faces/{face_id}/unknown")
def face_unknown(request: Request, face_id: int, back: str = Form("")) -> Response:
    applied = changes.apply(request.app.state.settings, lambda s: changes.face_unknown(s, face_id))
    return _done(_local(back, "/unknown"), f"face {face_id} is marked unknown", applied)


@router.post("/clusters/{cluster_id}/name")
def name_cluster(request: Request, cluster_id: int, name: str = Form(..., max_length=10_000)) -> Response:
    """Name a group of unknown faces at once (``pipeline clusters name``)."""
    from pipeline.people.clusters import name_cluster as do_name

    settings = request.app.state.settings
    applied = changes.apply(settings, lambda s: do_name(s, settings, cluster_id, name).requeued_photo_ids)
    return _done("/unknown", f"group {cluster_id} is {' '.join(name.split())}", applied)


@router.post("/clusters/{cluster_id}/ignore")
def ignore_cluster(request: Request, cluster_id: int) -> Response:
    """Hide a group of strangers (``pipeline clusters ignore``); their faces stay hidden."""
    from pipeline.people.clusters import ignore_cluster as do_ignore

    def change(session: Session) -> list[int]:
        do_ignore(session, cluster_id)
        return []

    applied = changes.apply(request.app.state.settings, change)
    return _done("/unknown", f"group {cluster_id} hidden (strangers)", applied)


@router.post("/photos/retry")
def retry(request: Request, photo_id: int | None = Form(None)) -> Response:
    from pipeline.ingest.retry import retry_photos

    applied = changes.apply(request.app.state.settings, lambda s: retry_photos(s, photo_id=photo_id))
    return _done("/status", "queued again", applied)


def _local(back: str, default: str) -> str:
    """Where to go after a change: a path on this site only (never another host)."""
    if back.startswith("/") and not back.startswith("//") and "\\" not in back:
        return back
    return default
