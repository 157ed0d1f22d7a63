"""Groups of unknown faces on the Unknown faces page: name a group at once, hide strangers
(the CLI's `pipeline clusters name` / `ignore` functions, on real SFace embeddings)."""

from __future__ import annotations

import re

from sqlalchemy import text

from tests.web.conftest import Album, client_for


def _rows(album: Album, sql: str) -> list[tuple]:  # type: ignore[type-arg]  # rows of any shape
    from pipeline.store.db import get_engine

    with get_engine(album.settings.db_url).connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql)).all()]


def test_name_a_group_and_hide_strangers(album: Album) -> None:
    from pipeline.people.changes import forget
    from pipeline.people.clusters import update_clusters
    from pipeline.store.db import session_scope

    with session_scope() as session:
        forget(session, "Eileen")
        forget(session, "Grace")
        update_clusters(session)
    clusters = _rows(album, "SELECT id FROM clusters WHERE status = 'open' ORDER BY id")
    assert len(clusters) == 2, clusters
    client = client_for(album)
    page = client.get("/unknown").text
    shown = re.findall(r'data-cluster="(\d+)"', page)
    assert sorted(int(c) for c in shown) == [c[0] for c in clusters]
    token = client.cookies.get("pipeline_csrf")
    first, second = (c[0] for c in clusters)
    members = _rows(album, f"SELECT count(*) FROM faces WHERE cluster_id = {first}")[0][0]

    named = client.post(f"/clusters/{first}/name", data={"csrf_token": token, "name": "Pat"}, follow_redirects=False)
    assert named.status_code == 303
    assert _rows(album, "SELECT count(*) FROM faces f JOIN people p ON p.id = f.person_id WHERE p.name = 'Pat'") == [
        (members,)
    ]
    hidden = client.post(f"/clusters/{second}/ignore", data={"csrf_token": token}, follow_redirects=False)
    assert hidden.status_code == 303
    page = client.get("/unknown").text
    assert "data-cluster=" not in page and "Every face has a name." in page  # strangers hidden
    again = client.post(f"/clusters/{first}/name", data={"csrf_token": token, "name": "Sam"})
    assert again.status_code == 400 and "already named" in again.text
    assert client.post("/clusters/999999/ignore", data={"csrf_token": token}).status_code in (400, 404)
