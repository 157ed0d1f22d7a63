"""Who may use the web app, enforced by the server: a password off loopback, CSRF on every POST.

- **Password.** ``web_password`` (settings) turns on HTTP Basic authentication for every request
  (any user name, that password, compared in constant time). Binding to anything but a loopback
  address without one is refused at start (:func:`check_bind`).
- **CSRF.** Every page gets a random token in a ``SameSite=Strict`` cookie and in its forms; a
  POST must carry both, equal, and when the browser sends ``Origin`` it must be this server's own.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import secrets
import socket

from pipeline.errors import PipelineError

CSRF_COOKIE = "pipeline_csrf"
CSRF_FIELD = "csrf_token"
MAX_BODY_BYTES = 64 * 1024
"""Largest request body a form may send (names are at most 200 characters)."""


class UnsafeBind(PipelineError, PermissionError):
    """The web app was asked to listen beyond this machine without a password."""


def is_loopback(host: str) -> bool:
    """True when every address ``host`` resolves to is a loopback address (127.0.0.0/8, ::1)."""
    if host in ("", "0.0.0.0", "::"):
        return False
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return all(ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback for info in infos)


def check_bind(host: str, password: str | None) -> None:
    """Refuse to serve beyond loopback without a password (raises :class:`UnsafeBind`)."""
    if not is_loopback(host) and not password:
        raise UnsafeBind(
            f"refusing to serve the family's photos on {host!r} without a password: set PIPELINE_WEB_PASSWORD "
            "(or web_password in config.toml), or bind 127.0.0.1"
        )


def password_ok(authorization: str | None, password: str) -> bool:
    """Whether an ``Authorization: Basic ...`` header carries ``password`` (any user name)."""
    if not authorization or not authorization.lower().startswith("basic "):
        return False
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    _, sep, given = decoded.partition(":")
    return bool(sep) and secrets.compare_digest(given.encode(), password.encode())


def new_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_ok(cookie: str | None, field: str | None, origin: str | None, own_origin: str) -> bool:
    """A POST is genuine when its form token equals its cookie and its Origin (if sent) is ours."""
    if not cookie or not field or not secrets.compare_digest(cookie.encode(), field.encode()):
        return False
    return origin is None or origin == own_origin
