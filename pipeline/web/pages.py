"""The pages (GET): People, Person, Photo, Unknown faces, Search, Status. Every read goes through
the read-only engine on ``app.state.read_engine``."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response

from pipeline.web import queries
from pipeline.web.rendering import page

router = APIRouter()


def _pages(total: int, size: int) -> int:
    return max(1, -(-total // size))


@router.get("/")
def home() -> Response:
    return RedirectResponse("/people", status_code=303)


@router.get("/people")
def people(request: Request) -> Response:
    with request.app.state.read_engine.connect() as conn:
        cards = queries.people_cards(conn)
    return page(request, "people.html", {"people": cards, "names": [c.name for c in cards]})


@router.get("/people/{person_id}")
def person(request: Request, person_id: int, page_no: int = Query(1, alias="page", ge=1, le=1_000_000)) -> Response:
    size = request.app.state.settings.web_page_size
    with request.app.state.read_engine.connect() as conn:
        name = queries.person_name(conn, person_id)
        if name is None:
            raise HTTPException(404, f"no person with id {person_id} (forgotten or merged?)")
        photos, total = queries.person_photos(conn, person_id, (page_no - 1) * size, size)
        names = queries.people_names(conn)
    context = {"person_id": person_id, "name": name, "photos": photos, "total": total, "names": names}
    return page(request, "person.html", {**context, "page": page_no, "pages": _pages(total, size)})


@router.get("/photos/{photo_id}")
def photo(request: Request, photo_id: int) -> Response:
    with request.app.state.read_engine.connect() as conn:
        detail = queries.photo_detail(conn, photo_id)
        if detail is None:
            raise HTTPException(404, f"no photo with id {photo_id}")
        names = queries.people_names(conn)
    return page(request, "photo.html", {"photo": detail, "names": names})


@router.get("/unknown")
def unknown(request: Request, page_no: int = Query(1, alias="page", ge=1, le=1_000_000)) -> Response:
    from pipeline.web.clusters import hidden_cluster_ids, open_clusters

    size = request.app.state.settings.web_page_size
    with request.app.state.read_engine.connect() as conn:
        groups = open_clusters(conn, limit=20) if page_no == 1 else []
        faces, total = queries.unknown_faces(conn, (page_no - 1) * size, size, hidden_cluster_ids(conn))
        names = queries.people_names(conn)
    context = {"faces": faces, "total": total, "names": names, "page": page_no, "pages": _pages(total, size)}
    return page(request, "unknown.html", {**context, "groups": groups})


MAX_PAGE = 1_000_000


def _page_number(raw: str) -> int | None:
    """The ``page`` query text -> a 1-based page number, or None unless it is a whole number 1..MAX_PAGE."""
    digits = raw.strip()
    if not digits.isascii() or not digits.isdigit() or not 1 <= int(digits) <= MAX_PAGE:
        return None
    return int(digits)


@router.get("/search")
def search(
    request: Request,
    q: str = Query("", max_length=500),
    page_text: str = Query("1", alias="page", max_length=20),
    after: str = Query("", max_length=40),
    before: str = Query("", max_length=40),
) -> Response:
    """Name and caption matches, ``web_page_size`` of each a page (newest first, duplicates shown
    once). Caption matches page by cursor: "older" continues ``after`` the page's last caption hit
    and "newer" ends ``before`` its first, one page of work however deep; without a cursor (page 1,
    or a ``?page=K`` link) they are skipped by count. Each is fetched one past the page so the
    "older" link appears only when more exist."""
    from pipeline.store.search import SearchError, search_captions
    from pipeline.web.queries import PhotoCard

    page_no = _page_number(page_text)
    if page_no is None:
        problem = f"page must be a whole number from 1 to {MAX_PAGE:,}, not {page_text!r}"
        return page(request, "search.html", {"q": q, "results": [], "message": problem, "page": 1}, status=400)
    results: list[PhotoCard] = []
    message: str | None = None
    more = False
    cursors: dict[str, str] = {}
    if q.strip():
        size = request.app.state.settings.web_page_size
        offset = (page_no - 1) * size
        engine = request.app.state.read_engine
        with engine.connect() as conn:
            results, named = queries.search_by_name(conn, q, offset, size)
        seen = {card.id for card in results}
        try:
            if before:  # the page before one the user saw: more follow it
                hits = search_captions(engine, q, size, before=before)
                more_captions = True
            else:
                hits = search_captions(engine, q, size + 1, offset=0 if after else offset, after=after or None)
                more_captions = len(hits) > size
        except SearchError as exc:
            hits, message, more_captions = [], str(exc), False
        more = named > offset + size or more_captions
        hits = hits[:size]
        if hits:
            cursors = {"older": hits[-1].cursor, "newer": hits[0].cursor}
        elif after:  # no caption hit left here: later pages continue from the same place
            cursors = {"older": after}
        for hit in hits:
            if hit.photo_id not in seen:
                seen.add(hit.photo_id)
                shot = hit.taken_at or queries.epoch_time(hit.mtime)
                results.append(PhotoCard(hit.photo_id, queries.file_name(hit.path), shot, caption=hit.caption))
        if not results and message is None:
            message = f"nothing found for {q!r}" if page_no == 1 else f"no page {page_no} for {q!r}: fewer results"
    context = {"q": q, "results": results, "message": message, "page": page_no, "more": more, "cursors": cursors}
    return page(request, "search.html", context)


@router.get("/status")
def status(request: Request) -> Response:
    from pipeline.broker.client import queue_length, resolve_broker_url

    settings = request.app.state.settings
    with request.app.state.read_engine.connect() as conn:
        counts = queries.state_counts(conn)
        failed = queries.failures(conn, 20)
    broker = resolve_broker_url(settings)
    queue = queue_length(broker) if broker else None
    context = {"counts": counts, "failed": failed, "broker": broker, "queue": queue, "flower": settings.flower_url}
    return page(request, "status.html", context)
