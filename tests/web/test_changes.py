"""Changes through the web app: the same functions as the CLI, CSRF-checked, clear messages."""

from __future__ import annotations

import re

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.web.conftest import Album, client_for, tag_all


def _rows(album: Album, sql: str) -> list[tuple]:  # type: ignore[type-arg]  # rows of any shape
    from pipeline.store.db import get_engine

    with get_engine(album.settings.db_url).connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql)).all()]


def _post(client: TestClient, url: str, **fields: str) -> httpx.Response:
    token = client.get("/people").cookies.get("pipeline_csrf") or client.cookies.get("pipeline_csrf")
    return client.post(url, data={"csrf_token": token or "", **fields}, follow_redirects=False)


def _person_id(album: Album, name: str) -> int:
    return int(_rows(album, f"SELECT id FROM people WHERE name = '{name}'")[0][0])


def _faces_of(album: Album, photo: str) -> list[tuple]:  # type: ignore[type-arg]  # (face id, person name)
    return _rows(
        album,
        "SELECT f.id, pe.name FROM faces f JOIN photos p ON p.id = f.photo_id "
        "LEFT JOIN people pe ON pe.id = f.person_id "
        f"WHERE p.id = {album.photo_ids[photo]} ORDER BY f.idx",
    )


def _caption(album: Album, photo: str) -> str:
    return str(_rows(album, f"SELECT text FROM captions WHERE photo_id = {album.photo_ids[photo]}")[0][0])


def test_fix_a_name_on_the_photo_page_redoes_the_caption(album: Album) -> None:
    client = client_for(album)
    (face_id, name), (other_id, _) = _faces_of(album, "eileen-and-grace.jpg")
    assert name == "Eileen"
    response = _post(client, f"/faces/{face_id}/not", name="Eileen", back="/photos/1")
    assert response.status_code == 303 and response.headers["location"] == "/photos/1"
    assert _rows(album, f"SELECT person_id, rejected_person_ids FROM faces WHERE id = {face_id}")[0] == (
        None,
        str(_person_id(album, "Eileen")),
    )
    page = client.get("/photos/1")
    assert "1 photo(s) to re-tag (queued for" in page.text  # the flash message (no broker here), shown once
    assert "to re-tag" not in client.get("/photos/1").text
    state = _rows(album, f"SELECT state, work FROM photos WHERE id = {album.photo_ids['eileen-and-grace.jpg']}")
    assert state == [("queued", "rematch")]
    tag_all(album.settings, [album.photo_ids["eileen-and-grace.jpg"]])  # what the worker does
    assert _caption(album, "eileen-and-grace.jpg") == "Grace with 1 other person."

    assert _post(client, f"/faces/{face_id}/name", name="eileen").status_code == 303
    tag_all(album.settings, [album.photo_ids["eileen-and-grace.jpg"]])
    assert _faces_of(album, "eileen-and-grace.jpg") == [(face_id, "Eileen"), (other_id, "Grace")]
    assert _rows(album, f"SELECT user_set FROM faces WHERE id = {face_id}") == [(1,)]
    assert _caption(album, "eileen-and-grace.jpg") == "Eileen and Grace."

    assert _post(client, f"/faces/{other_id}/unknown", back="//evil.example/x").headers["location"] == "/unknown"
    assert _rows(album, f"SELECT person_id FROM faces WHERE id = {other_id}") == [(None,)]
    assert f"/media/faces/{other_id}/160.jpg" in client.get("/unknown").text


def test_name_an_unknown_face_as_a_new_person_and_as_a_group(album: Album) -> None:
    client = client_for(album)
    eileen_faces = [
        r[0]
        for r in _rows(album, "SELECT f.id FROM faces f JOIN people p ON p.id = f.person_id WHERE p.name = 'Eileen'")
    ]
    assert _post(client, f"/people/{_person_id(album, 'Eileen')}/forget").status_code == 303
    assert "Every face has a name." not in client.get("/unknown").text
    first, *rest = eileen_faces
    assert _post(client, f"/faces/{first}/name", name="Collins").status_code == 303
    assert _rows(
        album, "SELECT count(*) FROM reference_images r JOIN people p ON p.id = r.person_id WHERE p.name = 'Collins'"
    ) == [(1,)]
    fields = {"csrf_token": client.cookies.get("pipeline_csrf"), "name": "Collins", "face": [str(f) for f in rest]}
    response = client.post("/faces/name", data=fields, follow_redirects=False)
    assert response.status_code == 303
    named = _rows(
        album,
        "SELECT count(*) FROM faces f JOIN people p ON p.id = f.person_id WHERE p.name = 'Collins' AND f.user_set",
    )
    assert named == [(len(eileen_faces),)]


def test_rename_and_merge(album: Album) -> None:
    client = client_for(album)
    grace = _person_id(album, "Grace")
    assert _post(client, f"/people/{grace}/rename", name="  Grace   Hopper ").status_code == 303
    assert _rows(album, f"SELECT name FROM people WHERE id = {grace}") == [("Grace Hopper",)]
    tag_all(album.settings, [album.photo_ids["grace-mirrored.jpg"]])
    assert _caption(album, "grace-mirrored.jpg") == "Grace Hopper."
    eileen = _person_id(album, "Eileen")
    response = _post(client, f"/people/{eileen}/merge", into="grace hopper")
    assert response.headers["location"] == f"/people/{grace}"
    assert _rows(album, "SELECT name FROM people") == [("Grace Hopper",)]


def test_bad_input_gets_a_clear_message(album: Album) -> None:
    client = client_for(album)
    grace = _person_id(album, "Grace")
    cases = [
        (f"/people/{grace}/rename", {"name": "   "}, 400, "a name cannot be empty"),
        (f"/people/{grace}/rename", {"name": "x" * 5000}, 400, "at most 200 characters"),
        (f"/people/{grace}/rename", {"name": "Eileen"}, 400, "already exists"),
        (f"/people/{grace}/merge", {"into": "Nobody"}, 400, "no person named"),
        ("/people/999999/forget", {}, 404, "no person with id 999999"),
        ("/faces/999999/name", {"name": "Grace"}, 404, "no face with id 999999"),
        ("/faces/name", {"name": "Grace"}, 400, "tick at least one face"),
        ("/photos/retry", {}, 400, "nothing to retry"),
        (f"/people/{grace}/rename", {}, 400, "missing or invalid value for: name"),
    ]
    for url, fields, status, message in cases:
        response = _post(client, url, **fields)
        assert response.status_code == status, (url, fields)
        assert message in response.text and "Traceback" not in response.text, (url, response.text)
    huge = client.post(
        f"/people/{grace}/rename",
        content=b"name=" + b"x" * 100_000,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert huge.status_code == 413 and "too large" in huge.text
    assert _rows(album, "SELECT name FROM people ORDER BY name") == [("Eileen",), ("Grace",)]


def test_retry_failed_from_the_status_page(album: Album) -> None:
    from pipeline.store.db import get_engine

    with get_engine(album.settings.db_url).begin() as conn:
        conn.execute(
            text(
                "UPDATE photos SET state='failed', error='corrupt file', attempts=3 "
                f"WHERE id = {album.photo_ids['coffee.jpg']}"
            )
        )
    client = client_for(album)
    status = client.get("/status").text
    assert "corrupt file" in status and "Retry all failed photos" in status
    response = _post(client, "/photos/retry", photo_id=str(album.photo_ids["coffee.jpg"]))
    assert response.status_code == 303
    assert re.search("1 photo", client.get("/status").text)
    assert _rows(album, f"SELECT state, attempts FROM photos WHERE id = {album.photo_ids['coffee.jpg']}") == [
        ("queued", 0)
    ]
