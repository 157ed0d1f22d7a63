"""The one script for a GPU machine: is PLVM as released running here, and how fast?

    python bench/gpu_check.py                 # CUDA; the real weights when present, else random real shapes
    python bench/gpu_check.py --dry-run       # the same steps on the CPU with the tiny random bundle (tested)

With the real weights present (``pipeline models check``: DINOv2-base, llava-1.5-7b-hf and the
Aligner checkpoint at the configured places, ``PIPELINE_*`` settings as for the worker):

1. verifies the checkpoint (strict load, its config and parameter count: 41,272,832 for the release);
2. tokenizes the release's prompts with the tokenizer of the real LLaVA weights and checks the ids
   against the release's layout (:mod:`pipeline.plvm.release_ids`: the 68-id recognition prompt,
   the space piece after concept tokens, ``▁Yes`` 3869 / ``▁No`` 1939, answers and options);
3. builds the sample album (8 public-domain photos, 2 people), enrols both people, scores every
   (photo, person) pair (P(yes)), writes a caption and answers per photo, timing each step;
4. prints one table (and the rows), writes JSON. Exit status 1 when a check fails.

Without the real weights it measures speed only, on random weights of the real shapes
(``bench/gpu_plvm.py``'s builder and measurements: DINOv2-base, the release's Aligner, a 7.06 B
LLaVA-1.5 layout in float16). ``--train-steps N`` adds N Aligner training steps at the real shapes
(``bench/gpu_train.py``). Defaults fit in well under 8 minutes on one H200 (model loading
included); nothing is downloaded.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
RELEASE_PARAMETERS = 41_272_832


def _bench_module(name: str):
    """bench/<name>.py as a module (the bench folder is not a package)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "bench" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sync(device: Any) -> None:
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def _timed(device: Any, fn):
    """(result, seconds) of one call, CUDA-synchronised."""
    _sync(device)
    start = time.perf_counter()
    result = fn()
    _sync(device)
    return result, time.perf_counter() - start


def check_release(engine: Any, steps: dict[str, Any], device: Any, expect_release: bool) -> list[str]:
    """Steps 1-3 on ``engine`` (real weights, or the tiny bundle in a dry run); returns failures."""
    from PIL import Image

    from pipeline.config import DEFAULT_QUESTIONS
    from pipeline.datasets.sample_album import build_sample_album
    from pipeline.photos.decode import decode_photo
    from pipeline.plvm.checkpoint import describe_checkpoint
    from pipeline.plvm.embeddings import Person
    from pipeline.plvm.release_ids import check_release_ids

    failures: list[str] = []
    info, seconds = _timed("cpu", lambda: describe_checkpoint(engine.sources.aligner))
    steps["checkpoint"] = {"parameters": info["parameters"], "sha256": info["sha256"][:16], "s": seconds}
    if expect_release and info["parameters"] != RELEASE_PARAMETERS:
        failures.append(f"checkpoint has {info['parameters']:,} parameters, the release's has {RELEASE_PARAMETERS:,}")

    lvlm, seconds = _timed(device, engine.load_lvlm)
    steps["load_llava_s"] = seconds
    problems = check_release_ids(lvlm)
    steps["release_ids"] = problems or "identical"
    if expect_release:
        failures += [f"token ids: {p}" for p in problems]

    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        refs = build_sample_album(Path(tmp) / "album", Path(tmp) / "refs")
        photos = {p.name: decode_photo(p, 10**9).image for p in sorted((Path(tmp) / "album").iterdir())}
        references = {name: Image.open(path).convert("RGB") for name, path in refs.items()}
    engine.encode_references([next(iter(references.values()))])  # loads DINOv2 + Aligner
    people, seconds = _timed(
        device, lambda: [Person(name, engine.encode_references([im])) for name, im in references.items()]
    )
    steps["enrol_ms_per_person"] = 1e3 * seconds / len(people)
    images = list(photos.values())
    scores, seconds = _timed(device, lambda: engine.recognition_scores_batch(images, people))
    steps["recognition_ms_per_photo"] = 1e3 * seconds / len(images)
    present = [[p for p, s in zip(people, row, strict=True) if s >= 0.5] for row in scores]
    described, seconds = _timed(device, lambda: engine.describe(images, present, list(DEFAULT_QUESTIONS)))
    steps["describe_ms_per_photo"] = 1e3 * seconds / len(images)
    steps["rows"] = [
        {
            "photo": name,
            "p_yes": {p.name: round(float(s), 3) for p, s in zip(people, row, strict=True)},
            "caption": d.caption,
            "answers": d.answers,
        }
        for name, row, d in zip(photos, scores, described, strict=True)
    ]
    return failures


def print_table(res: dict[str, Any]) -> None:
    print(f"device: {res['device_name']} | weights: {res['weights']} | model version: {res.get('model_version', '-')}")
    steps = res.get("steps", {})
    table = [
        ("checkpoint (strict load)", steps.get("checkpoint", {}).get("parameters"), "parameters"),
        ("LLaVA load", steps.get("load_llava_s"), "s"),
        ("release token ids", steps.get("release_ids") if steps.get("release_ids") == "identical" else "DIFFER", ""),
        ("enrolment", steps.get("enrol_ms_per_person"), "ms/person"),
        ("recognition, 8 photos x 2 people", steps.get("recognition_ms_per_photo"), "ms/photo"),
        ("caption + answers", steps.get("describe_ms_per_photo"), "ms/photo"),
    ]
    for label, value, unit in table:
        if value is not None:
            shown = f"{value:,.1f}" if isinstance(value, float) else f"{value:,}" if isinstance(value, int) else value
            print(f"  {label:34} {shown:>14} {unit}")
    for row in steps.get("rows", []):
        print(f"  {row['photo']:24} P(yes) {row['p_yes']}  caption: {row['caption'][:70]!r}")
    if "speed" in res:
        print(f"speed ({res['speed']['build']['kind']}):")
        _bench_module("gpu_plvm").print_table(res["speed"])
    if "train" in res:
        t = res["train"]
        print(f"  training: {t.get('steps_timed')} steps, {t.get('tokens_per_s', 0):,.0f} LVLM tokens/s")
    for failure in res["failures"]:
        print(f"FAILED: {failure}")
    print(f"wall time {res['wall_s']:.0f} s" + ("" if res["failures"] else "; all checks passed"))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny random bundle: the same steps, quickly")
    parser.add_argument("--random", action="store_true", help="random real-shape weights even if real ones exist")
    parser.add_argument("--device", default=None, help="default: cuda (cpu with --dry-run)")
    parser.add_argument("--dtype", default="float16", choices=["float16", "bfloat16", "float32"])
    parser.add_argument("--repeats", type=int, default=2, help="speed measurements: median of this many calls")
    parser.add_argument("--batches", default="1,8", help="speed measurements: photos per call")
    parser.add_argument("--max-new-tokens", type=int, default=40)
    parser.add_argument("--train-steps", type=int, default=0, help="also time N training steps (real shapes)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    import torch

    from pipeline.config import Settings
    from pipeline.plvm.engine import PlvmEngine, tiny_sources

    device = args.device or ("cpu" if args.dry_run else "cuda")
    cuda = torch.device(device).type == "cuda"
    if cuda and not torch.cuda.is_available():
        sys.exit("no CUDA device: run on a GPU machine, or use --dry-run")
    start = time.perf_counter()
    res: dict[str, Any] = {
        "device_name": torch.cuda.get_device_name(device) if cuda else "CPU",
        "torch": torch.__version__,
        "failures": [],
    }
    with tempfile.TemporaryDirectory(prefix="gpu-check-bundle-") as tmp:
        engine = None
        if args.dry_run:
            from pipeline.plvm.tiny import write_tiny_bundle

            engine = PlvmEngine(tiny_sources(write_tiny_bundle(Path(tmp) / "tiny")), "cpu", "float32", max_new_tokens=8)
            res["weights"] = "tiny random bundle (dry run)"
        elif not args.random:
            settings = Settings(profile="plvm", device=device, max_new_tokens=args.max_new_tokens)
            candidate = PlvmEngine.from_settings(settings)
            present = candidate.check_files()
            res["files"] = [{"part": what, "where": where, "present": ok} for what, where, ok in present]
            if all(ok for _, _, ok in present):
                engine, res["weights"] = candidate, "real"
        if engine is not None:
            res["model_version"] = engine.model_version
            res["steps"] = {}
            res["failures"] = check_release(engine, res["steps"], device, expect_release=not args.dry_run)
        else:
            res["weights"] = "random, real shapes (real weights not all present: speed only)"
        if engine is None or args.dry_run:
            gpu_plvm = _bench_module("gpu_plvm")
            batches = [int(b) for b in args.batches.split(",")]
            if args.dry_run:
                speed_engine, build = gpu_plvm.build_tiny_cpu(8, 16, Path(tmp))
            else:
                speed_engine, build = gpu_plvm.build_real(device, args.dtype, None, args.max_new_tokens, 16)
            measures = gpu_plvm.measure(speed_engine, device, args.repeats, batches, [2, 5])
            res["speed"] = {"device_name": res["device_name"], "build": build, "measures": measures}
            del speed_engine
        if args.train_steps:
            flags = ["--steps", str(args.train_steps), "--quiet"]
            res["train"] = _bench_module("gpu_train").main(
                (["--dry-run-cpu-tiny", "--batch-size", "2", "--warmup-steps", "1"] if args.dry_run else []) + flags
            )
    res["wall_s"] = time.perf_counter() - start
    print_table(res)
    out = args.out or REPO / "bench" / "out" / ("gpu_check_dry_run.json" if args.dry_run else "gpu_check.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2, default=str) + "\n")
    print(f"written {out}")
    return res


if __name__ == "__main__":
    result = main()
    sys.exit(1 if result["failures"] else 0)
