"""Grouping unknown faces into people: a full clustering for faces nobody has grouped yet, and an
incremental join for each new face.

Full clustering (:func:`cluster_embeddings`), for the N faces that belong to no cluster:

1. a *leader pass* in numpy: faces in order, each joins the nearest micro-cluster whose centroid
   has cosine >= ``join_cosine``, else starts one (one matrix-vector product per face against the
   micro-cluster centroids);
2. scikit-learn's ``AgglomerativeClustering`` (average linkage, cosine distance, threshold
   ``1 - merge_cosine``) on the micro-cluster centroids merges micro-clusters of one person that
   the order-dependent leader pass split;
3. groups with fewer than ``min_size`` faces stay unclustered (noise).

Above :data:`MAX_AGGLOMERATE` micro-clusters, step 2 runs on the micro-clusters of two faces or
more only (faces seen once, mostly strangers, are what makes their number large).

Agglomerative clustering alone needs the N x N distance matrix (80 GB at N = 100,000) and
HDBSCAN's run time grows faster than N^2 in 128 dimensions (2 min at N = 10,000 on two cores);
the leader pass reduces N to the number of micro-clusters first. Incremental assignment
(:func:`nearest_cluster`) is one product with the cluster centroids: milliseconds at 10,000
clusters (``bench/bench_clustering.py``).

Embeddings are SFace's (128,) unit vectors, compared by dot product (cosine). Pure numpy plus
scikit-learn (imported when step 2 runs).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: A face joins a micro-cluster (and, later, a stored cluster) at this cosine to its centroid.
#: Centroids average out pose and light, so a face's cosine to its own person's centroid is
#: higher than to a single photo of them; 0.5 is above the 0.36-0.45 band where different people
#: meet in the test album (README, "Naming faces").
JOIN_COSINE = 0.5
#: Micro-clusters merge when the average cosine between their centroids reaches this.
MERGE_COSINE = 0.5
#: The fewest faces that make a cluster worth showing.
MIN_CLUSTER_SIZE = 2
#: Above this many micro-clusters step 2 is skipped (its distance matrix would not fit).
MAX_AGGLOMERATE = 20_000


@dataclass(frozen=True)
class ClusterParams:
    """Thresholds of :func:`cluster_embeddings` (see the module doc)."""

    join_cosine: float = JOIN_COSINE
    merge_cosine: float = MERGE_COSINE
    min_size: int = MIN_CLUSTER_SIZE


def _unit(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float32)
    return rows / np.maximum(np.linalg.norm(rows, axis=-1, keepdims=True), 1e-12)


def leader_pass(embeddings: np.ndarray, join_cosine: float) -> tuple[np.ndarray, np.ndarray]:
    """Micro-clusters in one pass: ``(labels (N,), centroid sums (M, 128))``.

    A face joins the micro-cluster with the highest cosine between the face and the cluster's
    normalised running sum, when that cosine is >= ``join_cosine``; else it starts a new one.
    """
    embeddings = _unit(embeddings)
    n = embeddings.shape[0]
    labels = np.empty(n, np.int64)
    sums = np.zeros((max(16, n // 8), embeddings.shape[1] if n else 128), np.float32)
    centroids = np.zeros_like(sums)
    m = 0
    for i in range(n):
        face = embeddings[i]
        if m:
            cos = centroids[:m] @ face
            best = int(np.argmax(cos))
            if cos[best] >= join_cosine:
                labels[i] = best
                sums[best] += face
                centroids[best] = sums[best] / max(float(np.linalg.norm(sums[best])), 1e-12)
                continue
        if m == len(sums):
            sums = np.concatenate([sums, np.zeros_like(sums)])
            centroids = np.concatenate([centroids, np.zeros_like(centroids)])
        sums[m] = face
        centroids[m] = face
        labels[i] = m
        m += 1
    return labels, sums[:m]


def cluster_embeddings(embeddings: np.ndarray, params: ClusterParams = ClusterParams()) -> np.ndarray:
    """Cluster labels (N,) for ``embeddings`` (N, 128): 0..K-1, biggest cluster first, -1 = noise."""
    n = len(embeddings)
    if n == 0:
        return np.zeros(0, np.int64)
    micro, sums = leader_pass(embeddings, params.join_cosine)
    # Step 2 on every micro-cluster when they fit, else on those of two faces or more (a face
    # alone, mostly a stranger seen once, keeps its own label).
    sizes = np.bincount(micro, minlength=len(sums))
    chosen = np.arange(len(sums)) if len(sums) <= MAX_AGGLOMERATE else np.flatnonzero(sizes >= 2)
    mapping = np.arange(len(sums))
    if 1 < len(chosen) <= MAX_AGGLOMERATE:
        from sklearn.cluster import AgglomerativeClustering

        merged = AgglomerativeClustering(
            n_clusters=None, metric="cosine", linkage="average", distance_threshold=1.0 - params.merge_cosine
        ).fit_predict(_unit(sums[chosen]))
        mapping[chosen] = len(sums) + np.asarray(merged)  # merged groups get fresh labels
    labels = mapping[micro]
    ids, counts = np.unique(labels, return_counts=True)
    ranked = sorted(zip(ids, counts, strict=True), key=lambda t: (-t[1], t[0]))
    order = [int(i) for i, c in ranked if c >= params.min_size]
    relabel = np.full(int(ids.max()) + 1, -1, np.int64)
    relabel[order] = np.arange(len(order))
    return relabel[labels]


def nearest_cluster(embedding: np.ndarray, centroids: np.ndarray, join_cosine: float = JOIN_COSINE) -> int | None:
    """Row of ``centroids`` (K, 128), unit rows, that ``embedding`` (128,) joins, or None when the
    best cosine is below ``join_cosine`` (or there is no cluster)."""
    if len(centroids) == 0:
        return None
    cos = centroids @ _unit(embedding)
    best = int(np.argmax(cos))
    return best if cos[best] >= join_cosine else None


def centroids_of(sums: np.ndarray) -> np.ndarray:
    """Unit centroids (K, 128) from centroid sums (K, 128)."""
    return _unit(np.asarray(sums, dtype=np.float32).reshape(-1, 128))
