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


MAX_PAGE_WALK = 100  # ?page=K without a cursor walks K - 1 pages; deeper pages need the links


def _search_problem(request: Request, q: str, problem: str) -> Response:
    return page(
        request, "search.html", {"q": q, "results": [], "message": problem, "page": 1, "cursors": {}}, status=400
    )


@router.get("/search")
def search(
    request: Request,
    q: str = Query("", max_length=500),
    page_text: str = Query("1", alias="page", max_length=20),
    after: str = Query("", max_length=40),
    before: str = Query("", max_length=40),
) -> Response:
    """One stream of the photos of the person named ``q`` and the photos whose captions match it
    (:mod:`pipeline.web.search_stream`), newest first, each photo once, ``web_page_size`` a page.
    "older" continues ``after`` the page's last photo and "newer" ends ``before`` its first: one
    page of work however deep. ``page`` is the page's number for display; without a cursor it
    says where to start (page K walks the K - 1 pages before it, up to ``MAX_PAGE_WALK``). A bad
    page number or cursor gets a 400 with a message and the form."""
    from pipeline.web.search_stream import SearchPositionError, page_start, parse_position, search_stream

    page_no = _page_number(page_text)
    if page_no is None:
        return _search_problem(request, q, f"page must be a whole number from 1 to {MAX_PAGE:,}, not {page_text!r}")
    context: dict[str, object] = {"q": q, "results": [], "message": None, "page": page_no, "cursors": {}}
    if not q.strip():
        return page(request, "search.html", context)
    size = request.app.state.settings.web_page_size
    engine = request.app.state.read_engine
    try:
        older_than = parse_position(after) if after else None
        newer_than = parse_position(before) if before else None
        if older_than is None and newer_than is None and page_no > 1:
            if page_no > MAX_PAGE_WALK:
                problem = f"page {page_no} is too deep to find by number (up to {MAX_PAGE_WALK}); use the older links"
                return _search_problem(request, q, problem)
            reached, older_than = page_start(engine, q, size, page_no)
            if not reached:
                context["message"] = f"no page {page_no} for {q!r}: fewer results"
                return page(request, "search.html", context)
        stream = search_stream(engine, q, size, after=older_than, before=newer_than)
    except SearchPositionError as exc:
        return _search_problem(request, q, str(exc))
    if newer_than is not None and stream.newer is None:
        page_no = 1  # nothing newer past this page: it is the first
        if not stream.cards:
            stream = search_stream(engine, q, size)
    cursors = {way: where.token() for way, where in (("older", stream.older), ("newer", stream.newer)) if where}
    message = stream.message
    if not stream.cards and message is None:
        message = f"nothing found for {q!r}" if older_than is None else f"nothing older for {q!r}"
    context.update(results=stream.cards, message=message, page=page_no, cursors=cursors)
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
