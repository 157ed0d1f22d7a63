"""Benchmark clustering of unknown faces and the incremental join of a new face.

    python bench/bench_clustering.py [--n 100000] [--per-person 20] [--quick] [--out bench/out/clustering.json]

1. Embeddings shaped like SFace's: 128-d unit vectors, ``n * 0.8`` faces of ``n * 0.8 /
   per_person`` random people (a random direction plus noise; same-person cosine about 0.5,
   different people about 0) and ``n * 0.2`` strangers seen once.
2. Full clustering (:func:`pipeline.recognition.clustering.cluster_embeddings`): wall time, peak
   Python heap (tracemalloc) and the process's peak RSS, and the adjusted Rand index against
   the truth.
3. Incremental join, pure: one new face against the clusters' centroids
   (:func:`~pipeline.recognition.clustering.nearest_cluster`), median and p95 of 1,000 faces.
4. Incremental join through the database, as the worker does it after writing a photo
   (:func:`pipeline.people.clusters.assign_new_faces` on a SQLite store holding the clusters):
   median and p95 per photo with one new face, 50 photos.

``--quick``: n = 10,000 (a few seconds). Prints the figures and writes them as JSON. Not a test.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def sface_like(n: int, per_person: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n, 128) float32 unit embeddings and their (n,) person labels (-1 = a stranger seen once)."""
    rng = np.random.default_rng(seed)
    n_known = int(n * 0.8)
    people = max(1, n_known // per_person)
    centres = rng.standard_normal((people, 128)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = np.concatenate([rng.integers(0, people, n_known), -1 - np.arange(n - n_known)])
    rng.shuffle(labels)
    x = np.where(labels[:, None] >= 0, centres[np.maximum(labels, 0)], 0).astype(np.float32)
    strangers = labels < 0
    x[strangers] = rng.standard_normal((int(strangers.sum()), 128))
    x[strangers] /= np.linalg.norm(x[strangers], axis=1, keepdims=True)
    x += rng.standard_normal(x.shape).astype(np.float32) * 0.09
    return x / np.linalg.norm(x, axis=1, keepdims=True), labels


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"median_ms": statistics.median(ordered) * 1000, "p95_ms": ordered[int(0.95 * (len(ordered) - 1))] * 1000}


def db_join(embeddings: np.ndarray, labels: np.ndarray, rounds: int) -> dict[str, float]:
    """assign_new_faces on a scratch SQLite store with one cluster per label; one new face per photo."""
    from sqlmodel import Session

    from pipeline.people.clusters import assign_new_faces
    from pipeline.store.db import dispose_engines, get_engine, upgrade
    from pipeline.store.models import Cluster, Face, Photo

    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/bench.db"
        upgrade(url)
        engine = get_engine(url)
        with Session(engine) as session:
            for k in range(int(labels.max()) + 1):
                members = embeddings[labels == k]
                session.add(Cluster(n_faces=len(members), centroid_sum=members.sum(axis=0).astype("<f4").tobytes()))
            session.commit()
        times = []
        rng = np.random.default_rng(1)
        for i in range(rounds):
            with Session(engine) as session:
                photo = Photo(path=f"/bench/{i}.jpg", sha256="x", size=1, mtime=0.0, state="done")
                session.add(photo)
                session.flush()
                assert photo.id is not None
                face = embeddings[int(rng.integers(0, len(embeddings)))]
                session.add(
                    Face(photo_id=photo.id, idx=0, x=0, y=0, w=0.1, h=0.1, det_score=0.9, embedding=face.tobytes())
                )
                session.commit()
                start = time.perf_counter()
                assign_new_faces(session, [photo.id])
                session.commit()
                times.append(time.perf_counter() - start)
        dispose_engines()
    return percentiles(times) | {"photos": rounds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--per-person", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="n = 10,000")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "clustering.json")
    args = parser.parse_args()
    n = 10_000 if args.quick else args.n

    from sklearn.metrics import adjusted_rand_score

    from pipeline.recognition.clustering import centroids_of, cluster_embeddings, nearest_cluster

    x, truth = sface_like(n, args.per_person)
    cluster_embeddings(x[:200])  # imports scikit-learn outside the timing
    tracemalloc.start()
    start = time.perf_counter()
    labels = cluster_embeddings(x)
    seconds = time.perf_counter() - start
    _, peak_heap = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    n_clusters = int(labels.max()) + 1
    sums = np.stack([x[labels == k].sum(axis=0) for k in range(n_clusters)])
    centroids = centroids_of(sums)
    rng = np.random.default_rng(2)
    join_times = []
    for i in rng.integers(0, n, 1000):
        start = time.perf_counter()
        nearest_cluster(x[int(i)], centroids)
        join_times.append(time.perf_counter() - start)
    figures = {
        "n_faces": n,
        "people": int(truth.max()) + 1,
        "strangers": int((truth < 0).sum()),
        "cluster_seconds": seconds,
        "peak_heap_mib": peak_heap / 2**20,
        "peak_rss_mib": rss_mib,
        "clusters": n_clusters,
        "unclustered": int((labels < 0).sum()),
        # Faces left alone count as clusters of one (as the strangers are in the truth).
        "adjusted_rand_index": float(adjusted_rand_score(truth, np.where(labels < 0, -1 - np.arange(n), labels))),
        "join_pure": percentiles(join_times),
        "join_db": db_join(x, labels, 50),
    }
    for key, value in figures.items():
        print(f"{key:>20}: {value}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
