"""Every page over a real tagged album (FastAPI's test client; read-only)."""

from __future__ import annotations

import re

from sqlalchemy import text

from tests.web.conftest import Album, client_for


def _person_ids(album: Album) -> dict[str, int]:
    from pipeline.store.db import get_engine

    with get_engine(album.settings.db_url).connect() as conn:
        return {name: pid for pid, name in conn.execute(text("SELECT id, name FROM people")).all()}


def test_people_page_lists_everyone_with_counts(shared_album: Album) -> None:
    client = client_for(shared_album)
    response = client.get("/people")
    assert response.status_code == 200
    html = response.text
    assert "Eileen" in html and "Grace" in html
    # Eileen: eileen-at-nasa, eileen-and-grace, grace-and-eileen, eileen-closer, holiday-wide
    eileen = re.search(r'data-person="Eileen".*?(\d+) photos', html, re.S)
    assert eileen is not None and int(eileen.group(1)) == 5
    assert "last seen" in html
    assert client.get("/", follow_redirects=False).headers["location"] == "/people"
    script = client.get("/static/app.js")
    assert script.status_code == 200 and "data-confirm" in script.text  # vendored, served by the app


def test_person_page_newest_first_and_paginated(shared_album: Album) -> None:
    import os

    ids = _person_ids(shared_album)
    # make the file times distinct and known: later album file name -> newer
    client = client_for(shared_album)
    response = client.get(f"/people/{ids['Grace']}")
    assert response.status_code == 200
    assert "Grace" in response.text and "newest first" in response.text
    shown = re.findall(r'href="/photos/(\d+)" class="framed"', response.text)
    by_id = {v: k for k, v in shared_album.photo_ids.items()}
    mtimes = [os.stat(shared_album.folder / by_id[int(i)]).st_mtime for i in shown]
    assert len(shown) == 5 and mtimes == sorted(mtimes, reverse=True)
    assert len(re.findall(r'class="box" data-face="\d+" style="left:', response.text)) == 5  # faces highlighted

    shared_album.settings.web_page_size = 2
    try:
        first = client.get(f"/people/{ids['Grace']}")
        assert "page 1 of 3" in first.text and 'rel="next"' in first.text
        last = client.get(f"/people/{ids['Grace']}?page=3")
        assert len(re.findall(r'class="framed"', last.text)) == 1 and 'rel="prev"' in last.text
    finally:
        shared_album.settings.web_page_size = 48


def test_photo_page_shows_boxes_names_caption_answers(shared_album: Album) -> None:
    client = client_for(shared_album)
    response = client.get(f"/photos/{shared_album.photo_ids['eileen-and-grace.jpg']}")
    assert response.status_code == 200
    html = response.text
    assert html.count('class="box') == 2
    assert "Eileen and Grace." in html
    assert "Who is in this photo?" in html
    assert 'list="people-names"' in html and '<option value="Grace">' in html
    coffee = client.get(f"/photos/{shared_album.photo_ids['coffee.jpg']}").text
    assert "No face was found" in coffee and "No people." in coffee


def test_unknown_faces_page(shared_album: Album) -> None:
    response = client_for(shared_album).get("/unknown")
    assert response.status_code == 200
    assert "Every face has a name." in response.text  # both people in the sample album are enrolled


def test_search_by_caption_and_by_name(shared_album: Album) -> None:
    client = client_for(shared_album)
    by_caption = client.get("/search", params={"q": "eileen grace"})
    assert by_caption.status_code == 200
    assert by_caption.text.count("/media/photos/") >= 2
    by_name = client.get("/search", params={"q": "grace"})
    assert by_name.text.count("/media/photos/") >= 5
    nothing = client.get("/search", params={"q": "zebra"})
    assert "nothing found for &#39;zebra&#39;" in nothing.text
    assert "give at least one word" in client.get("/search", params={"q": "!!!"}).text
    assert client.get("/search").status_code == 200


def test_status_page(shared_album: Album) -> None:
    response = client_for(shared_album).get("/status")
    assert response.status_code == 200
    assert re.search(r'id="count-done">8<', response.text)
    assert "no broker running" in response.text and "Flower" in response.text
    assert "No failures." in response.text


def test_unknown_ids_and_bad_values_get_a_page_not_a_trace(shared_album: Album) -> None:
    client = client_for(shared_album)
    for url, status in [
        ("/people/999999", 404),
        ("/photos/999999", 404),
        ("/people/abc", 400),
        ("/people/1?page=0", 400),
        ("/no/such/page", 404),
    ]:
        response = client.get(url)
        assert response.status_code == status, url
        assert "Traceback" not in response.text and 'class="error"' in response.text, url
    assert "no person with id 999999" in client.get("/people/999999").text
