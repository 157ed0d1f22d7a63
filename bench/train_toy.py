"""Proof that Aligner training works, on a CPU, offline, in a few minutes.

1. Draws a procedural identity dataset (:func:`pipeline.datasets.toy.make_toy_identities`, the release's
   folder format) and writes the demo's tiny RANDOM bundle (:mod:`pipeline.plvm.training.toy`).
2. Trains an Aligner with :func:`pipeline.plvm.train.train_aligner` -- frozen random DINOv2 and
   LLaVA, only the Aligner learns -- holding out whole identities and a share of every training
   identity's query photos.
3. Reports the loss curve and held-out recognition from the training run's evaluations (the code of
   ``pipeline eval recognition``), then re-checks the SAVED checkpoint: strict load
   (``describe_checkpoint``), and the same evaluation through a fresh engine that loads it like
   the plvm/tiny profile does.

    .venv/bin/python bench/train_toy.py                    # ~5 min on 2 cores
    .venv/bin/python bench/train_toy.py --steps 300 --identities 12 --queries 16   # a quick look

Figures go to ``--out``/train_toy.json. "seen" = held-out query photos of training identities,
"unseen" = identities never trained on (reported, no target).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

TARGET_SEEN = 0.9


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("bench/out/train_toy"), help="work folder (recreated)")
    p.add_argument("--identities", type=int, default=20)
    p.add_argument("--queries", type=int, default=40, help="query photos per identity")
    p.add_argument("--size", type=int, default=64, help="toy photo side, px")
    p.add_argument("--held-out-identities", type=float, default=0.2)
    p.add_argument("--held-out-queries", type=float, default=0.25)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=4e-3)
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--other-weight", type=float, default=0.1, help="loss weight of non-yes/no answer tokens")
    p.add_argument("--eval-every", type=int, default=500)
    p.add_argument("--seed", type=int, default=0, help="data split and Aligner init")
    p.add_argument("--data-seed", type=int, default=0)
    p.add_argument("--bundle-seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def curve(values: list[float], points: int = 10) -> list[float]:
    """Means of ``points`` consecutive equal chunks (the loss curve, printed)."""
    n = max(1, len(values) // points)
    return [round(sum(values[i : i + n]) / len(values[i : i + n]), 4) for i in range(0, len(values) - n + 1, n)]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    from pipeline.config import Settings
    from pipeline.datasets.toy import make_toy_identities
    from pipeline.evaluation.recognition import evaluate_recognition
    from pipeline.plvm.checkpoint import describe_checkpoint
    from pipeline.plvm.engine import PlvmEngine, tiny_sources
    from pipeline.plvm.train import TrainConfig, train_aligner
    from pipeline.plvm.training.data import split_identities, write_identity_folders
    from pipeline.plvm.training.toy import TOY_ALIGNER, TOY_BUNDLE, write_toy_bundle

    started = time.perf_counter()
    out = args.out
    shutil.rmtree(out, ignore_errors=True)
    data = make_toy_identities(out / "data", args.identities, args.queries, seed=args.data_seed, size=args.size)
    bundle = write_toy_bundle(out / "bundle", seed=args.bundle_seed)
    settings = Settings(profile="tiny", tiny_bundle=bundle, device="cpu", dtype="float32", data_dir=out / "state")
    config = TrainConfig(
        data_dir=data,
        out=out / "aligner.ckpt",
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        warmup_steps=args.warmup,
        other_weight=args.other_weight,
        eval_every=args.eval_every,
        held_out_identities=args.held_out_identities,
        held_out_query_fraction=args.held_out_queries,
        seed=args.seed,
        aligner_sizes=TOY_ALIGNER,
        progress=not args.no_progress,
    )
    prepared = time.perf_counter() - started
    result = train_aligner(config, settings, evaluator=partial(evaluate_recognition, settings))

    # The saved checkpoint, loaded like any other: strict load + a fresh engine's evaluation.
    info = describe_checkpoint(config.out)
    split = split_identities(data, args.held_out_identities, None, args.held_out_queries, args.seed)
    engine = PlvmEngine(replace(tiny_sources(bundle), aligner=config.out), device="cpu", dtype="float32")
    reloaded = {}
    for name, identities in (("seen", split.seen), ("unseen", split.unseen)):
        folder = write_identity_folders(out / "eval" / name, identities)
        report = evaluate_recognition(settings, folder, engine=engine, progress=False)
        reloaded[name] = {
            "weighted_accuracy": report.weighted_accuracy,
            "positive_accuracy": report.positive_accuracy,
            "negative_accuracy": report.negative_accuracy,
            "auc": report.auc,
            "n_identities": report.n_identities,
            "n_queries": report.n_queries,
        }

    seen, unseen = result.final_eval("seen"), result.final_eval("unseen")
    k = max(1, len(result.losses) // 5)
    figures: dict[str, Any] = {
        "command": "bench/train_toy.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "dataset": {
            "identities": args.identities,
            "queries_per_identity": args.queries,
            "size_px": args.size,
            **result.split,
        },
        "frozen_models": {"bundle": TOY_BUNDLE, "note": "random weights, frozen"},
        "aligner": info["config"] | {"parameters": info["parameters"]},
        "train": {
            "steps": args.steps,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "warmup": args.warmup,
            "yes_no_weight": config.yes_no_weight,
            "other_weight": args.other_weight,
        },
        "loss_curve": curve(result.losses),
        "loss_first_20pct": sum(result.losses[:k]) / k,
        "loss_last_20pct": sum(result.losses[-k:]) / k,
        "train_accuracy_last_20pct": _nanmean(result.accuracies[-k:]),
        "evals": [e.__dict__ for e in result.evals],
        "seen_weighted_accuracy": seen.weighted_accuracy if seen else None,
        "unseen_weighted_accuracy": unseen.weighted_accuracy if unseen else None,
        "reloaded_checkpoint": reloaded,
        "target_seen": TARGET_SEEN,
        "seconds": {
            "prepare": round(prepared, 1),
            "train_with_evals": round(result.seconds, 1),
            "total": round(time.perf_counter() - started, 1),
        },
    }
    (out / "train_toy.json").write_text(json.dumps(figures, indent=1, default=str) + "\n")
    _print(figures)
    return figures


def _nanmean(values: list[float]) -> float | None:
    kept = [v for v in values if v == v]
    return sum(kept) / len(kept) if kept else None


def _print(f: dict[str, Any]) -> None:
    print("\n== Aligner training on the toy identities (CPU, frozen random DINOv2 + LLaVA) ==")
    print(f"data: {f['dataset']}")
    print(f"loss curve (10 chunks): {f['loss_curve']}")
    print(f"loss first 20%: {f['loss_first_20pct']:.3f}  last 20%: {f['loss_last_20pct']:.3f}")
    for e in f["evals"]:
        print(
            f"  step {e['step']:>5} {e['split']:>6}: weighted {e['weighted_accuracy']:.3f} "
            f"(pos {e['positive_accuracy']:.3f}, neg {e['negative_accuracy']:.3f}, AUC {e['auc']:.3f})"
        )
    seen, unseen = f["seen_weighted_accuracy"], f["unseen_weighted_accuracy"]
    verdict = "MET" if seen is not None and seen >= f["target_seen"] else "NOT met"
    print(
        f"held-out queries of training identities: weighted accuracy {seen:.3f} (target {f['target_seen']}: {verdict})"
    )
    if unseen is not None:
        print(f"identities never seen in training:      weighted accuracy {unseen:.3f} (reported, no target)")
    r = f["reloaded_checkpoint"]
    print(
        "saved checkpoint re-loaded by a fresh engine: "
        + ", ".join(f"{k} {v['weighted_accuracy']:.3f}" for k, v in r.items())
    )
    print(f"time: {f['seconds']}")


if __name__ == "__main__":
    main()
