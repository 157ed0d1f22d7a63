"""Clusters of unknown faces through the real pipeline: Ingestor + worker code + SQLite, real
YuNet/SFace on public-domain faces and their edits; naming, ignoring, references with provenance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlmodel import col, select

from pipeline.config import get_settings
from pipeline.ingest.ingestor import Ingestor
from pipeline.people.clusters import (
    assign_new_faces,
    ignore_cluster,
    list_clusters,
    list_faces,
    name_cluster,
    update_clusters,
    write_cluster_crops,
)
from pipeline.people.references import correct_as_reference, list_references
from pipeline.people.registry import PeopleError
from pipeline.store.db import session_scope, upgrade
from pipeline.store.models import Caption, Cluster, Face, Photo
from pipeline.tagging.batch import process_photos
from tests import images
from tests.conftest import cli, flat


def _variants(image: np.ndarray, face: images.Box) -> list[np.ndarray]:
    return [
        image,
        images.flip(image),
        images.crop_around_face(image, face, 0.6),
        images.rescale(image, 0.8),
    ]


@pytest.fixture
def album(tmp_path: Path, data_dir: Path) -> dict[str, list[Path]]:
    """Four photos each of the astronaut and Grace Hopper, three of the cameraman; nobody enrolled."""
    upgrade()
    folder = tmp_path / "album"
    people = {
        "eileen": (images.astronaut(), images.ASTRONAUT_FACE),
        "grace": (images.grace_hopper(), images.GRACE_HOPPER_FACE),
    }
    files = {
        name: [images.save_jpeg(v, folder / f"{name}{i}.jpg") for i, v in enumerate(_variants(img, face))]
        for name, (img, face) in people.items()
    }
    camera = images.camera()
    files["carl"] = [images.save_jpeg(v, folder / f"carl{i}.jpg") for i, v in enumerate([camera, images.flip(camera)])]
    return files


def _tag(paths: list[Path], task: str) -> dict[Path, int]:
    ingestor = Ingestor(sender=None)
    ids = {path: ingestor.file_ready(path) for path in paths}
    assert all(v is not None for v in ids.values())
    outcome = process_photos([v for v in ids.values() if v is not None], task, get_settings())
    assert sorted(outcome.done) == sorted(v for v in ids.values() if v is not None)
    return {k: v for k, v in ids.items() if v is not None}


def _cluster_of(paths: list[Path]) -> set[int | None]:
    with session_scope() as session:
        return {
            f.cluster_id
            for f in session.exec(
                select(Face)
                .join(Photo, col(Photo.id) == col(Face.photo_id))
                .where(col(Photo.path).in_([str(p) for p in paths]))
            ).all()
        }


def test_unknown_faces_group_by_person_then_get_named(album: dict[str, list[Path]], tmp_path: Path) -> None:
    ids = _tag([p for paths in album.values() for p in paths], "t1")
    settings = get_settings()
    with session_scope() as session:
        update = update_clusters(session)
    assert (update.created, update.clustered, update.unclustered) == (3, 10, 0)
    clusters = {name: _cluster_of(paths) for name, paths in album.items()}
    assert all(len(c) == 1 and None not in c for c in clusters.values())  # one cluster per person
    assert len({next(iter(c)) for c in clusters.values()}) == 3
    with session_scope() as session:
        listed = list_clusters(session)
        assert [c.size for c in listed] == [4, 4, 2]  # biggest first
        assert all(c.status == "open" and c.examples for c in listed)
        crops = write_cluster_crops(session, tmp_path / "crops", listed, settings.max_image_pixels, per_cluster=2)
        assert len(crops) == 6 and all(p.stat().st_size > 0 for p in crops)
        faces = list_faces(session)
        assert len(faces) == 10 and all(f.name is None and f.cluster_id is not None for f in faces)
        assert update_clusters(session).created == 0  # nothing left to group: existing clusters untouched

    eileen = next(iter(clusters["eileen"]))
    with session_scope() as session:
        named = name_cluster(session, settings, eileen, "Eileen")
    assert named.created and named.faces_named == 4 and named.references_added == 3
    assert sorted(named.requeued_photo_ids) == sorted(ids[p] for p in album["eileen"])  # only her photos
    process_photos(named.requeued_photo_ids, "t2", settings)
    with session_scope() as session:
        captions = {session.get(Photo, c.photo_id).path: c.text for c in session.exec(select(Caption)).all()}  # type: ignore[union-attr]
        person, refs = list_references(session, "eileen")
        assert {r.source for r in refs} == {"cluster"} and all(r.face_id is not None for r in refs)
        assert session.get(Cluster, eileen).status == "named"  # type: ignore[union-attr]
        assert [c.id for c in list_clusters(session)] == [next(iter(clusters["grace"])), next(iter(clusters["carl"]))]
    assert all(captions[str(p)] == "Eileen." for p in album["eileen"])
    assert all(captions[str(p)] == "1 unknown person." for p in album["grace"])

    carl = next(iter(clusters["carl"]))
    with session_scope() as session:
        ignore_cluster(session, carl)
        assert carl not in [c.id for c in list_clusters(session)]
        assert carl in [c.id for c in list_clusters(session, include_ignored=True)]
    # A new photo of the cameraman joins the ignored cluster as the worker writes it.
    new = images.save_jpeg(images.crop_around_face(images.camera(), (198, 120, 60, 76), 1.0), tmp_path / "carl_new.jpg")
    _tag([new], "t3")
    assert _cluster_of([new]) == {carl}
    with session_scope() as session:
        assert session.get(Cluster, carl).n_faces == 3  # type: ignore[union-attr]
        assert assign_new_faces(session, list(ids.values())) == 0  # already placed
        with pytest.raises(PeopleError, match="no cluster 999"):
            name_cluster(session, settings, 999, "X")
        with pytest.raises(PeopleError, match="already named"):
            name_cluster(session, settings, eileen, "Y")


def test_correction_becomes_a_reference_with_provenance(album: dict[str, list[Path]], data_dir: Path) -> None:
    settings = get_settings()
    ids = _tag(album["grace"][:2] + album["eileen"][:1], "t1")
    with session_scope() as session:
        faces = {f.photo_id: f.id for f in session.exec(select(Face)).all()}
        grace_face = faces[ids[album["grace"][0]]]
        assert grace_face is not None
        with pytest.raises(PeopleError, match="no person named"):
            correct_as_reference(session, settings, grace_face, "Grace")
    cli("enroll", "--name", "Eileen", str(album["eileen"][0]))
    with session_scope() as session:
        from pipeline.people.registry import find_person
        from pipeline.store.models import Person

        session.add(Person(name="Grace", name_key="grace"))
        session.flush()
        requeued = correct_as_reference(session, settings, grace_face, "Grace")
        assert find_person(session, "grace") is not None
    # Her own photo and the other photo of her (its face is now near a reference) are re-matched.
    assert sorted(requeued) == sorted([ids[album["grace"][0]], ids[album["grace"][1]]])
    process_photos(requeued, "t2", settings)
    with session_scope() as session:
        other = session.exec(select(Face).where(col(Face.photo_id) == ids[album["grace"][1]])).one()
        assert other.person_id is not None and not other.user_set  # named by the model from the new reference
    shown = cli("people", "show", "Grace")
    assert "correction" in shown.stdout and str(grace_face) in flat(shown.stdout)
    listed = cli("faces").stdout
    assert "Grace" in listed and "unknown" in listed  # her photo waits for a worker after `enroll`


def test_cli_clusters_name_and_ignore(album: dict[str, list[Path]], tmp_path: Path) -> None:
    _tag(album["grace"] + album["carl"], "t1")
    crops = tmp_path / "review"
    listing = cli("clusters", "--crops", str(crops))
    assert "2 new cluster(s)" in flat(listing.stdout) and "wrote" in listing.stdout
    assert len(list(crops.glob("cluster_*/face_*.jpg"))) == 6
    grace = _cluster_of(album["grace"]).pop()
    carl = _cluster_of(album["carl"]).pop()
    named = cli("clusters", "name", str(grace), "--name", "Grace")
    assert f"cluster {grace} is Grace" in flat(named.stdout) and "4 face(s) named" in flat(named.stdout)
    cli("clusters", "ignore", str(carl))
    assert "no clusters" in cli("clusters", "--no-crops").stdout
    bad = cli("clusters", "name", "12345", "--name", "X", check=False)
    assert bad.returncode == 1 and "no cluster 12345" in flat(bad.stderr)
    assert "Grace" in cli("faces", "--cluster", str(grace)).stdout


def test_close_up_reference_enrolls_and_empties_the_cluster(album: dict[str, list[Path]], tmp_path: Path) -> None:
    """A close-up (face filling ~90 % of the frame, enlarged) enrolls without --face; once the
    model names her faces, her cluster is no longer listed."""
    from pipeline.people.enrolment import enroll

    settings = get_settings()
    _tag(album["grace"], "t1")
    with session_scope() as session:
        assert update_clusters(session).created == 1
    x, y, w, h = images.GRACE_HOPPER_FACE
    side = round(h / 0.9)
    close = images.rescale(
        images.crop(images.grace_hopper(), (x + w // 2 - side // 2, y + h // 2 - side // 2, side, side)), 4
    )
    reference = images.save_jpeg(close, tmp_path / "grace_close_up.jpg")
    with session_scope() as session:
        result = enroll(session, settings, "Grace", [reference])
    assert result.added_references == 1 and len(result.requeued_photo_ids) == 4
    process_photos(result.requeued_photo_ids, "t2", settings)
    with session_scope() as session:
        assert list_clusters(session) == []
        assert [c.size for c in list_clusters(session, include_ignored=True)] == [0]
        assert all(f.name == "Grace" for f in list_faces(session))
