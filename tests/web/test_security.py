"""Safe by default, enforced by the server: CSRF on POSTs, a password off loopback."""

from __future__ import annotations

import base64

import pytest
from sqlalchemy import text

from pipeline.web.security import UnsafeBind, check_bind, is_loopback
from tests.web.conftest import Album, client_for


def _names(album: Album) -> list[str]:
    from pipeline.store.db import get_engine

    with get_engine(album.settings.db_url).connect() as conn:
        return [r[0] for r in conn.execute(text("SELECT name FROM people ORDER BY name")).all()]


def test_posts_without_a_matching_token_or_from_another_origin_are_refused(shared_album: Album) -> None:
    client = client_for(shared_album)
    token = client.get("/people").cookies["pipeline_csrf"]
    attempts = [
        ({"name": "Mallory"}, {}),  # no token in the form
        ({"name": "Mallory", "csrf_token": "guess"}, {}),  # wrong token
        ({"name": "Mallory", "csrf_token": token}, {"Origin": "http://evil.example"}),  # another site
        ({"name": "Mallory", "csrf_token": token}, {"Origin": "null"}),
    ]
    for fields, headers in attempts:
        response = client.post("/people/1/rename", data=fields, headers=headers, follow_redirects=False)
        assert response.status_code == 403 and "another site" in response.text
    fresh = client_for(shared_album)  # a token but no cookie: a forged form
    assert fresh.post("/people/1/rename", data={"name": "Mallory", "csrf_token": token}).status_code == 403
    assert "Mallory" not in _names(shared_album)


def test_password_is_required_when_set(shared_album: Album) -> None:
    shared_album.settings.web_password = "s3cret"
    try:
        anonymous = client_for(shared_album)
        for url in ("/people", "/media/photos/1/320.jpg", "/static/app.js"):
            response = anonymous.get(url)
            assert response.status_code == 401 and response.headers["www-authenticate"].startswith("Basic")
        wrong = base64.b64encode(b"family:guess").decode()
        assert client_for(shared_album, authorization=f"Basic {wrong}").get("/people").status_code == 401
        right = base64.b64encode(b"anyone:s3cret").decode()
        assert client_for(shared_album, authorization=f"Basic {right}").get("/people").status_code == 200
    finally:
        shared_album.settings.web_password = None


def test_binding_beyond_loopback_needs_a_password() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("::") and not is_loopback("192.0.2.1")
    check_bind("127.0.0.1", None)
    check_bind("0.0.0.0", "s3cret")
    with pytest.raises(UnsafeBind, match="without a password"):
        check_bind("0.0.0.0", None)
