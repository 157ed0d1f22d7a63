"""The Unknown faces page's groups: open clusters of unknown faces (``pipeline clusters``) with a
few example faces each, read on the read-only connection. Naming and hiding go through
:mod:`pipeline.people.clusters` (the CLI's functions)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, func, select
from sqlmodel import col

from pipeline.store.models import Cluster, Face


@dataclass
class ClusterCard:
    """An open cluster: its id, how many unknown faces it holds, and the ids of its best faces."""

    id: int
    size: int
    face_ids: list[int]


def open_clusters(conn: Connection, limit: int, examples: int = 8) -> list[ClusterCard]:
    """The ``limit`` biggest open clusters, each with up to ``examples`` faces (best detector score first)."""
    sizes = conn.execute(
        select(col(Cluster.id), func.count(col(Face.id)))
        .join(Face, col(Face.cluster_id) == col(Cluster.id))
        .where(col(Cluster.status) == "open", col(Face.person_id).is_(None), col(Face.photo_time).is_not(None))
        .group_by(col(Cluster.id))
        .order_by(func.count(col(Face.id)).desc(), col(Cluster.id))
        .limit(limit)
    ).all()
    cards = []
    for cluster_id, size in sizes:
        faces = conn.execute(
            select(col(Face.id))
            .where(col(Face.cluster_id) == cluster_id, col(Face.person_id).is_(None))
            .order_by(col(Face.det_score).desc(), col(Face.id))
            .limit(examples)
        ).scalars()
        cards.append(ClusterCard(int(cluster_id or 0), int(size), [int(f or 0) for f in faces]))
    return cards


def hidden_cluster_ids(conn: Connection) -> list[int]:
    """Clusters the user hid as strangers: their faces stay off the Unknown faces page."""
    ids = conn.execute(select(col(Cluster.id)).where(col(Cluster.status) == "ignored")).scalars()
    return [int(i) for i in ids if i is not None]
