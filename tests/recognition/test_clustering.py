"""pipeline.recognition.clustering on generated identities (unit vectors shaped like SFace's)."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.recognition.clustering import (
    ClusterParams,
    centroids_of,
    cluster_embeddings,
    leader_pass,
    nearest_cluster,
)


def identities(n_people: int, per_person: int, noise: float = 0.09, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(N, 128) unit embeddings and their (N,) person labels: each person a random direction plus
    noise (same-person cosine about 0.5, like SFace across photos; different people about 0)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_people, 128))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = np.repeat(np.arange(n_people), per_person)
    rng.shuffle(labels)
    x = centres[labels] + rng.standard_normal((len(labels), 128)) * noise
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), labels


def test_clusters_are_people() -> None:
    x, truth = identities(12, 15)
    labels = cluster_embeddings(x)
    assert labels.max() + 1 == 12
    assert (labels < 0).sum() <= 2  # an outlier photo may stay alone (below the join cosine to all)
    for k in range(12):  # every cluster holds one person, every person one cluster
        assert len(set(truth[labels == k])) == 1
    assert len({int(truth[labels == k][0]) for k in range(12)}) == 12


def test_biggest_first_and_singletons_are_noise() -> None:
    x, _ = identities(3, 1, seed=1)
    big, _ = identities(1, 9, seed=2)
    mid, _ = identities(1, 4, seed=3)
    labels = cluster_embeddings(np.concatenate([x, big, mid]))
    assert list(labels[:3]) == [-1, -1, -1]  # three different people, one face each
    assert (labels[3:12] == 0).all() and (labels[12:] == 1).all()
    assert (cluster_embeddings(np.concatenate([x, big]), ClusterParams(min_size=10)) == -1).all()
    assert cluster_embeddings(np.zeros((0, 128), np.float32)).shape == (0,)


def test_agglomeration_rejoins_what_the_leader_pass_split() -> None:
    x, truth = identities(5, 20, seed=4)
    micro, sums = leader_pass(x, join_cosine=0.75)  # strict: splits people
    assert len(sums) > 5
    labels = cluster_embeddings(x, ClusterParams(join_cosine=0.75, merge_cosine=0.4))
    assert labels.max() + 1 == 5
    assert all(len(set(truth[labels == k])) == 1 for k in range(5))
    assert len(micro) == len(x)


def test_nearest_cluster_joins_within_the_distance_only() -> None:
    x, truth = identities(4, 10, seed=5)
    labels = cluster_embeddings(x)
    sums = np.stack([x[labels == k].sum(axis=0) for k in range(labels.max() + 1)])
    centroids = centroids_of(sums)
    new, new_truth = identities(4, 3, seed=5)  # same people (same seed: same centres), new photos
    for face, person in zip(new, new_truth, strict=True):
        k = nearest_cluster(face, centroids)
        assert k is not None and set(truth[labels == k]) == {person}
    stranger = np.random.default_rng(99).standard_normal(128)
    assert nearest_cluster(stranger, centroids) is None
    assert nearest_cluster(stranger, np.zeros((0, 128), np.float32)) is None
    with pytest.raises(ValueError):
        centroids_of(np.zeros((2, 5)))
