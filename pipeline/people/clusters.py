"""Unknown faces grouped into clusters, and what a user does with them: the API behind
``pipeline faces``, ``pipeline clusters``, ``clusters name`` and ``clusters ignore`` (and the web
app's Unknown page).

A face belongs to a cluster through ``faces.cluster_id``. New unknown faces join the nearest
cluster (open or ignored) incrementally (:func:`assign_new_faces`, called by the worker after it
writes a photo); :func:`update_clusters` groups the faces no cluster took, without touching the
existing clusters (:mod:`pipeline.recognition.clustering`). Naming a cluster makes its best faces
references (source ``cluster``) and gives its faces the name as a user-level assignment; only the
photos that can change are re-queued. Ignoring hides a cluster (strangers); its faces keep
joining it, so they stay hidden.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy import func, update
from sqlmodel import Session, col, select

from pipeline.config import Settings
from pipeline.people.changes import requeue_photos
from pipeline.people.registry import PeopleError, clean_name, find_or_create_person, record_event
from pipeline.recognition.clustering import JOIN_COSINE, ClusterParams, centroids_of, cluster_embeddings
from pipeline.store.models import Cluster, Face, Person, Photo, Reference, utcnow

#: Faces of a named cluster that become references (the best by detector score x box width).
REFERENCES_PER_CLUSTER = 3


@dataclass(frozen=True)
class ClusterSummary:
    """One cluster as listed: id, size (faces), status, the person it was named (or None), and
    up to a few example photo paths (of its best faces)."""

    id: int
    size: int
    status: str
    person_name: str | None
    examples: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class FaceListing:
    """One face: id, photo path, box (x, y, w, h relative), name (or None), cluster id (or None),
    detector score and cosine to the named person (or None)."""

    id: int
    photo_path: str
    box: tuple[float, float, float, float]
    name: str | None
    cluster_id: int | None
    det_score: float
    match_score: float | None


@dataclass(frozen=True)
class ClusterUpdate:
    """What :func:`update_clusters` did: faces joined to existing clusters, clusters created and
    the faces in them, faces left unclustered."""

    joined: int
    created: int
    clustered: int
    unclustered: int


@dataclass(frozen=True)
class NamedCluster:
    person_id: int
    name: str
    created: bool
    faces_named: int
    references_added: int
    requeued_photo_ids: list[int]


def _vec(data: bytes) -> np.ndarray:
    from pipeline.recognition.faces import embedding_from_bytes

    return embedding_from_bytes(data)


_JOINABLE = ("open", "ignored")
_cache_lock = threading.Lock()
_cached_centroids: dict[str, tuple[tuple[int, int], list[int], np.ndarray]] = {}


def _centroids(session: Session) -> tuple[list[int], np.ndarray]:
    """Ids and unit centroids (K, 128) of the clusters new faces may join (open and ignored).

    Cached per database until the set of joinable clusters changes (their count or highest id:
    a join changes neither the centroid nor the set), so a worker reads the blobs once, not per
    photo.
    """
    joinable = col(Cluster.status).in_(_JOINABLE)
    count, top = session.exec(select(func.count(), func.max(col(Cluster.id))).where(joinable)).one()
    key, url = (int(count), int(top or 0)), str(session.get_bind().engine.url)
    with _cache_lock:
        hit = _cached_centroids.get(url)
    if hit is not None and hit[0] == key:
        return hit[1], hit[2]
    rows = session.exec(select(Cluster.id, Cluster.centroid_sum).where(joinable).order_by(col(Cluster.id))).all()
    ids = [int(i) for i, _ in rows if i is not None]
    sums = np.stack([_vec(s) for _, s in rows]) if rows else np.zeros((0, 128), np.float32)
    centroids = centroids_of(sums)
    with _cache_lock:
        _cached_centroids[url] = (key, ids, centroids)
    return ids, centroids


def _unclustered(session: Session, photo_ids: list[int] | None = None) -> list[tuple[int, bytes]]:
    query = select(Face.id, Face.embedding).where(
        col(Face.person_id).is_(None), col(Face.cluster_id).is_(None), col(Face.user_set).is_(False)
    )
    if photo_ids is not None:
        query = query.where(col(Face.photo_id).in_(photo_ids))
    return [(int(i), e) for i, e in session.exec(query.order_by(col(Face.id))).all() if i is not None]


def _join(session: Session, faces: list[tuple[int, bytes]], join_cosine: float) -> tuple[int, list[int]]:
    """Join each face to its nearest cluster within ``join_cosine``; returns (joined, left-over face ids)."""
    ids, centroids = _centroids(session)
    if not faces:
        return 0, []
    if not ids:
        return 0, [face_id for face_id, _ in faces]
    embs = np.stack([_vec(e) for _, e in faces])
    cos = embs @ centroids.T  # (F, K)
    best = cos.argmax(axis=1)
    joined: dict[int, list[int]] = {}
    rest: list[int] = []
    for (face_id, _), k, score in zip(faces, best, cos[np.arange(len(faces)), best], strict=True):
        if score >= join_cosine:
            joined.setdefault(ids[int(k)], []).append(face_id)
        else:
            rest.append(face_id)
    for cluster_id, members in joined.items():
        session.execute(update(Face).where(col(Face.id).in_(members)).values(cluster_id=cluster_id))
        session.execute(
            update(Cluster)
            .where(col(Cluster.id) == cluster_id)
            .values(n_faces=col(Cluster.n_faces) + len(members), updated_at=utcnow())
        )
    return sum(len(m) for m in joined.values()), rest


def assign_new_faces(session: Session, photo_ids: list[int], join_cosine: float | None = None) -> int:
    """Let the unknown, unclustered faces of ``photo_ids`` join their nearest cluster (cosine to
    its centroid >= ``join_cosine``, default :data:`~pipeline.recognition.clustering.JOIN_COSINE`);
    returns how many joined. One product with the cluster centroids: milliseconds. Commits nothing."""
    joined, _ = _join(session, _unclustered(session, photo_ids), JOIN_COSINE if join_cosine is None else join_cosine)
    return joined


def update_clusters(session: Session, params: ClusterParams = ClusterParams()) -> ClusterUpdate:
    """Group every unknown face no cluster holds: first each joins an existing cluster when it
    can, the rest are clustered among themselves (:func:`~pipeline.recognition.clustering.cluster_embeddings`)
    and every group of at least ``min_size`` becomes a new open cluster. Existing clusters are
    never re-clustered. Commits nothing."""
    faces = _unclustered(session)
    joined, rest_ids = _join(session, faces, params.join_cosine)
    by_id = dict(faces)
    rest = [(face_id, by_id[face_id]) for face_id in rest_ids]
    if not rest:
        return ClusterUpdate(joined, 0, 0, 0)
    embs = np.stack([_vec(e) for _, e in rest])
    labels = cluster_embeddings(embs, params)
    created = clustered = 0
    for label in range(int(labels.max()) + 1 if len(labels) else 0):
        members = np.flatnonzero(labels == label)
        cluster = Cluster(n_faces=len(members), centroid_sum=embs[members].sum(axis=0).astype("<f4").tobytes())
        session.add(cluster)
        session.flush()
        face_ids = [rest[i][0] for i in members]
        session.execute(update(Face).where(col(Face.id).in_(face_ids)).values(cluster_id=cluster.id))
        created += 1
        clustered += len(members)
    return ClusterUpdate(joined, created, clustered, len(rest) - clustered)


def _best_faces(session: Session, cluster_id: int, limit: int | None = None) -> list[Face]:
    """A cluster's faces, best first (detector score x box width)."""
    faces = session.exec(select(Face).where(col(Face.cluster_id) == cluster_id)).all()
    ranked = sorted(faces, key=lambda f: (-(f.det_score * f.w), f.id))
    return ranked[:limit] if limit is not None else ranked


def list_clusters(session: Session, include_ignored: bool = False, examples: int = 3) -> list[ClusterSummary]:
    """Clusters biggest first (open ones that still hold an unknown face; ``include_ignored``
    adds ignored, named and emptied ones), each with up to ``examples`` photo paths of its best
    faces. Size counts the cluster's faces that are still unknown (a face the model names after
    an enrolment leaves its cluster's count)."""
    sizes = dict(
        session.exec(
            select(col(Face.cluster_id), func.count())
            .where(col(Face.cluster_id).is_not(None), col(Face.person_id).is_(None))
            .group_by(col(Face.cluster_id))
        ).all()
    )
    query = select(Cluster)
    if not include_ignored:
        query = query.where(col(Cluster.status) == "open")
    people = {p.id: p.name for p in session.exec(select(Person)).all()}
    out = []
    for cluster in session.exec(query).all():
        assert cluster.id is not None
        paths: list[str] = []
        for face in _best_faces(session, cluster.id):
            photo = session.get(Photo, face.photo_id)
            if photo is not None and photo.path not in paths:
                paths.append(photo.path)
            if len(paths) >= examples:
                break
        name = people.get(cluster.person_id) if cluster.person_id is not None else None
        if not include_ignored and not sizes.get(cluster.id):
            continue
        out.append(ClusterSummary(cluster.id, int(sizes.get(cluster.id, 0)), cluster.status, name, paths))
    out.sort(key=lambda c: (-c.size, c.id))
    return out


def list_faces(
    session: Session, *, cluster_id: int | None = None, unknown_only: bool = False, limit: int | None = None
) -> list[FaceListing]:
    """Faces with id, photo, box, name or cluster, in photo then box order; filtered to one
    cluster or to unknown faces; at most ``limit``."""
    query = (
        select(Face, Photo.path, Person.name)
        .join(Photo, col(Photo.id) == col(Face.photo_id))
        .outerjoin(Person, col(Person.id) == col(Face.person_id))
        .order_by(col(Photo.path), col(Face.idx))
    )
    if cluster_id is not None:
        query = query.where(col(Face.cluster_id) == cluster_id)
    if unknown_only:
        query = query.where(col(Face.person_id).is_(None))
    if limit is not None:
        query = query.limit(limit)
    return [
        FaceListing(
            id=face.id or 0,
            photo_path=path,
            box=(face.x, face.y, face.w, face.h),
            name=name,
            cluster_id=face.cluster_id,
            det_score=face.det_score,
            match_score=face.match_score,
        )
        for face, path, name in session.exec(query).all()
    ]


def get_cluster(session: Session, cluster_id: int) -> Cluster:
    """The cluster, or :class:`PeopleError` naming the command that lists them."""
    cluster = session.get(Cluster, cluster_id)
    if cluster is None:
        raise PeopleError(f"no cluster {cluster_id} (see `pipeline clusters`)")
    return cluster


def name_cluster(session: Session, settings: Settings, cluster_id: int, name: str) -> NamedCluster:
    """Name cluster ``cluster_id`` as ``name`` (a new or existing person): its best
    :data:`REFERENCES_PER_CLUSTER` faces become references (source ``cluster``), its unknown faces
    get the name as a user's assignment (``user_set``), and only the photos that can change are
    re-queued: the cluster's photos and those with an unknown face near a new reference. Commits
    nothing."""
    from pipeline.people.references import add_face_reference, photos_near

    cluster = get_cluster(session, cluster_id)
    if cluster.status == "named":
        raise PeopleError(f"cluster {cluster_id} is already named; use `pipeline people rename` to change the name")
    name = clean_name(name)
    person, created = find_or_create_person(session, name)
    assert person.id is not None
    faces = [f for f in _best_faces(session, cluster_id) if f.person_id is None]
    references: list[Reference] = []
    for face in faces:
        if len(references) >= REFERENCES_PER_CLUSTER:
            break
        try:
            reference = add_face_reference(session, settings, face, person, "cluster")
        except PeopleError:
            continue  # that photo is gone; the next best face serves
        if reference is not None:
            references.append(reference)
    if not references and created:
        raise PeopleError(f"cluster {cluster_id}: none of its photos can be read; no reference for {name!r}")
    face_ids = [f.id for f in faces if f.id is not None]
    session.execute(
        update(Face).where(col(Face.id).in_(face_ids)).values(person_id=person.id, user_set=True, match_score=None)
    )
    cluster.status, cluster.person_id, cluster.updated_at = "named", person.id, utcnow()
    session.add(cluster)
    record_event(session, "name_cluster", person.id, f"cluster {cluster_id} -> {person.name}: {len(face_ids)} face(s)")
    session.flush()
    photos = {f.photo_id for f in faces}
    photos |= photos_near(session, [_vec(r.embedding) for r in references], settings.match_threshold)
    requeued = requeue_photos(session, photos)
    return NamedCluster(person.id, person.name, created, len(face_ids), len(references), requeued)


def ignore_cluster(session: Session, cluster_id: int) -> Cluster:
    """Hide cluster ``cluster_id`` (strangers) from ``pipeline clusters`` from now on; new faces
    like them keep joining it and stay hidden. Commits nothing."""
    cluster = get_cluster(session, cluster_id)
    if cluster.status == "named":
        raise PeopleError(f"cluster {cluster_id} is named; use `pipeline people forget` instead")
    cluster.status, cluster.updated_at = "ignored", utcnow()
    session.add(cluster)
    session.flush()
    return cluster


def write_cluster_crops(
    session: Session,
    folder: Path,
    clusters: list[ClusterSummary],
    max_pixels: int,
    per_cluster: int = 6,
    margin: float = 0.3,
) -> list[Path]:
    """Write face crops for review: ``folder/cluster_K/face_ID.jpg``, the best ``per_cluster``
    faces of each cluster, the box enlarged by ``margin`` of its size on each side (photos decoded
    with the ``max_pixels`` bomb guard). Photos that cannot be read are skipped. Returns the files
    written."""
    from PIL import Image

    from pipeline.photos.decode import PhotoError, decode_photo

    written: list[Path] = []
    for summary in clusters:
        target = folder / f"cluster_{summary.id}"
        target.mkdir(parents=True, exist_ok=True)
        for face in _best_faces(session, summary.id, per_cluster):
            photo = session.get(Photo, face.photo_id)
            if photo is None:
                continue
            try:
                image: Image.Image = decode_photo(Path(photo.path), max_pixels).image
            except (PhotoError, OSError):
                continue
            width, height = image.size
            mx, my = face.w * margin, face.h * margin
            box = (
                int(max(0.0, face.x - mx) * width),
                int(max(0.0, face.y - my) * height),
                int(min(1.0, face.x + face.w + mx) * width),
                int(min(1.0, face.y + face.h + my) * height),
            )
            path = target / f"face_{face.id}.jpg"
            image.crop(box).convert("RGB").save(path, quality=90)
            written.append(path)
    return written
