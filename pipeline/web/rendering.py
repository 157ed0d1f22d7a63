"""Rendering a page: the template, the CSRF token its forms carry, and a one-time message."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, unquote

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates

from pipeline.web import security

FLASH_COOKIE = "pipeline_flash"


def page(request: Request, template: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    """Render ``template`` with the CSRF token and the flash message (shown once) in its context."""
    templates: Jinja2Templates = request.app.state.templates
    flash = request.cookies.get(FLASH_COOKIE)
    full = {
        "csrf_field": security.CSRF_FIELD,
        "csrf_token": getattr(request.state, "csrf_token", ""),
        "flash": unquote(flash) if flash else None,
        **context,
    }
    response = templates.TemplateResponse(request, template, full, status_code=status)
    if flash:
        response.delete_cookie(FLASH_COOKIE)
    return response


def set_flash(response: Response, message: str) -> Response:
    """Show ``message`` on the next page rendered (after a POST's redirect)."""
    response.set_cookie(FLASH_COOKIE, quote(message[:500]), httponly=True, samesite="strict")
    return response
