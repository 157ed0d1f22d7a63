"""The FastAPI application: settings and engines on ``app.state``, the security middleware, HTML
error pages (never a stack trace), and the page, action and media routes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy.engine import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException

from pipeline.config import Settings
from pipeline.errors import PipelineError
from pipeline.web import security
from pipeline.web.rendering import page

HERE = Path(__file__).resolve().parent


def create_app(settings: Settings) -> FastAPI:
    """Build the app for ``settings`` (migrates the database first; opens no socket).

    Pages read through ``pipeline sql``'s read-only engine (:func:`read_engine`).

    ``app.state``: ``settings``, ``read_engine`` (read-only connection for every page),
    ``templates`` and ``thumbnail_dir`` (``<data_dir>/thumbnails``).
    """
    from pipeline.store.db import ensure_schema
    from pipeline.web import actions, media, pages

    ensure_schema(settings.db_url)
    app = FastAPI(title="photo-pipeline", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = settings
    app.state.read_engine = read_engine(settings)
    app.state.templates = Jinja2Templates(directory=str(HERE / "templates"))
    app.state.thumbnail_dir = settings.data_dir / "thumbnails"
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    for module in (pages, actions, media):
        app.include_router(module.router)
    app.middleware("http")(_guard)
    app.add_exception_handler(PipelineError, _pipeline_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected_error)
    return app


def read_engine(settings: Settings) -> Engine:
    """The engine every page reads through: ``pipeline sql``'s (SQLite ``mode=ro`` with its
    authorizer; on PostgreSQL the read-only role). On PostgreSQL without that role (``pipeline db
    readonly-role`` not run yet) it falls back, with a warning, to the owner's URL with read-only
    transactions (``default_transaction_read_only``)."""
    from pipeline.store.db import get_engine
    from pipeline.store.reader_role import ReaderRoleError
    from pipeline.store.readonly import readonly_engine

    try:
        return readonly_engine(settings)
    except ReaderRoleError as exc:
        import logging

        logging.getLogger(__name__).warning("web pages read with read-only transactions only: %s", exc)
        return get_engine(settings.db_url, read_only=True)


async def _guard(request: Request, call_next: Any) -> Response:
    """Password (when set), body size limit, the CSRF cookie every page's forms carry, and a
    ``Server-Timing: app;dur=MS`` header (time spent in the app, what bench/bench_web.py reports)."""
    started = time.perf_counter()
    settings: Settings = request.app.state.settings
    if settings.web_password and not security.password_ok(request.headers.get("authorization"), settings.web_password):
        return Response(
            "password required", status_code=401, headers={"WWW-Authenticate": 'Basic realm="photo-pipeline"'}
        )
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > security.MAX_BODY_BYTES):
        return page(request, "error.html", {"message": "that request is too large"}, status=413)
    token = request.cookies.get(security.CSRF_COOKIE)
    request.state.csrf_token = token or security.new_token()
    response: Response = await call_next(request)
    if token is None:
        response.set_cookie(security.CSRF_COOKIE, request.state.csrf_token, httponly=True, samesite="strict")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.2f}"
    return response


async def _pipeline_error(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "http_status", 400)
    return page(request, "error.html", {"message": str(exc)}, status=status)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    message = exc.detail if exc.status_code != 404 or exc.detail != "Not Found" else "no such page"
    return page(request, "error.html", {"message": message}, status=exc.status_code)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    fields = ", ".join(str(e.get("loc", ["?"])[-1]) for e in exc.errors()) or "a field"
    return page(request, "error.html", {"message": f"missing or invalid value for: {fields}"}, status=400)


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    import logging

    logging.getLogger(__name__).exception("web request failed: %s %s", request.method, request.url.path)
    return page(request, "error.html", {"message": "something went wrong on the server; see its log"}, status=500)
