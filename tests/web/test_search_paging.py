"""The Search page in pages: ``?page=K`` (1-based), newer/older links that keep the query, the
older link only while more results exist, a clear message for a bad page value or cursor."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.web.conftest import Album, client_for

PHOTO = re.compile(r'<a href="/photos/(\d+)"><img')
NEXT = re.compile(r'<a href="(/search\?[^"]+)" rel="next">')


@pytest.fixture
def client(shared_album: Album) -> Iterator[TestClient]:
    yield client_for(shared_album)
    shared_album.settings.web_page_size = 48


def _walk(client: TestClient, q: str) -> list[list[int]]:
    """Every page of ``q``'s results, following the "older" links from page 1: photo ids per page."""
    pages: list[list[int]] = []
    url: str | None = f"/search?q={q}"
    while url is not None and len(pages) < 20:
        response = client.get(url.replace("&amp;", "&"))
        assert response.status_code == 200, url
        pages.append([int(i) for i in PHOTO.findall(response.text)])
        link = NEXT.search(response.text)
        url = link.group(1) if link else None
    return pages


def test_caption_results_page_without_duplicates(shared_album: Album, client: TestClient) -> None:
    everything = [int(i) for i in PHOTO.findall(client.get("/search", params={"q": "eileen grace"}).text)]
    assert len(everything) >= 2 and NEXT.search(client.get("/search?q=eileen+grace").text) is None
    shared_album.settings.web_page_size = 1
    pages = _walk(client, "eileen+grace")
    assert len(pages) == len(everything)  # one a page; the last page has no "older" link
    assert all(len(p) == 1 for p in pages)
    flat = [i for p in pages for i in p]
    assert flat == everything and len(set(flat)) == len(flat)  # same order, nothing twice, nothing lost

    second = client.get("/search", params={"q": "eileen grace", "page": 2}).text
    assert 'href="/search?q=eileen%20grace&amp;page=1&amp;before=p' in second  # the query is kept
    assert 'rel="prev"' not in client.get("/search", params={"q": "eileen grace"}).text
    past = client.get("/search", params={"q": "eileen grace", "page": 99})
    assert past.status_code == 200 and "no page 99" in past.text and 'rel="next"' not in past.text


def test_name_results_page_too(shared_album: Album, client: TestClient) -> None:
    everything = {int(i) for i in PHOTO.findall(client.get("/search", params={"q": "grace"}).text)}
    assert len(everything) >= 5  # Grace's photos (by name) and captions naming her
    shared_album.settings.web_page_size = 2
    pages = _walk(client, "grace")
    assert len(pages) >= 3 and all(len(p) == 2 for p in pages[:-1]) and 1 <= len(pages[-1]) <= 2
    flat = [i for p in pages for i in p]
    assert set(flat) == everything and len(flat) == len(everything)  # one stream: each photo once


@pytest.mark.parametrize("bad", ["0", "-1", "abc", "1.5", "9999999", "²"])
def test_bad_page_value_gets_a_clear_message(client: TestClient, bad: str) -> None:
    response = client.get("/search", params={"q": "grace", "page": bad})
    assert response.status_code == 400
    assert "page must be a whole number from 1" in response.text and "Traceback" not in response.text
    assert 'name="q" value="grace"' in response.text  # the form is still there to try again


def test_older_and_newer_links_carry_cursors(shared_album: Album, client: TestClient) -> None:
    shared_album.settings.web_page_size = 1
    pages = _walk(client, "eileen+grace")
    assert len(pages) >= 3
    first = client.get("/search?q=eileen+grace").text
    link = NEXT.search(first)
    assert link is not None and "&amp;after=p" in link.group(1)  # older: after the page's last photo
    second = client.get(link.group(1).replace("&amp;", "&")).text
    third_link = NEXT.search(second)
    assert third_link is not None
    third = client.get(third_link.group(1).replace("&amp;", "&")).text
    newer = re.search(r'<a href="(/search\?[^"]+)" rel="prev">', third)
    assert newer is not None and "&amp;before=p" in newer.group(1)  # newer: before its first one
    back = client.get(newer.group(1).replace("&amp;", "&")).text
    assert [int(i) for i in PHOTO.findall(back)] == pages[1]
    bad = client.get("/search", params={"q": "grace", "page": 2, "after": "x1"})
    assert bad.status_code == 400 and "is not a search cursor" in bad.text
