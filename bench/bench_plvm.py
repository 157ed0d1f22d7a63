"""Benchmark the PLVM code path on CPU with the tiny random bundle (profile "tiny").

    python bench/bench_plvm.py [--rounds 3] [--throughput-n 32] [--repeats 5] [--out bench/out/plvm.json]

1. Writes the tiny bundle into a temp dir and builds the engine through the settings, as the
   worker does (``PlvmEngine.from_settings``, profile "tiny", CPU, float32).
2. Cold load: reference side (DINOv2 + Aligner, measured with its first forward) and LLaVA.
3. Enrolment: ``engine.encode_references`` (DINOv2 + Aligner forward) per person, first call
   excluded; then the two sample people are enrolled into a scratch SQLite data dir.
4. Per-photo latency split of the worker (``pipeline.tagging.batch.process_photos``, batch 1) on the
   public-domain sample photos (astronaut, grace_hopper, side_by_side, flip, crop, no_face; each
   copy with distinct pixels). Stages are timed by wrapping the functions the worker calls:
   decode (``pipeline.photos.decode.decode_photo``), faces (``FaceModel.detect``), recognition (the
   profile's ``recognition_scores`` = ``engine.recognition_scores_batch`` for all enrolled people),
   describe (the profile's ``describe`` = ``engine.describe`` with the default questions) and db
   write (``pipeline.tagging.batch._write``: replacing the batch's rows + commit, timed directly rather
   than by subtraction, so claim/commit-before-models/matching show up separately as "other" =
   whole ``process_photos`` minus the timed stages).
5. Worker throughput, photos/s, at batch_size 1, 8, 32 with prefix reuse on and off.
6. Engine-level describe (caption + 3 answers, 2 people present) with prefix reuse on and off,
   the language-model tokens each feeds, and the same accounting for the LLaVA-1.5-7B layout.

Timings on a shared 2-core machine are noisy: each figure is a median of repeats, and torch runs
on one thread by default (``--threads``): with the default 2 threads and other load on the box,
the tiny model's millisecond ops spent 10-50x longer spin-waiting than computing. The tiny model
has random weights: its generations are meaningless but run to the same lengths with reuse on/off.
Prints a table and writes JSON. Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

STAGES = ["decode", "faces", "recognition", "describe", "db_write"]
# LLaVA-1.5-7B prompt layout (Vicuna/LLaMA tokenizer): BOS + ~40 system tokens, 19 per person
# (concept + "is" + 16 soft + "."), " USER:" 2-3 tokens, 576 image tokens; ~15-token tails.
LLAVA7B = {"image_tokens": 576, "system_tokens": 40, "per_person": 19, "user_tokens": 3, "tail_tokens": 15}
LLAMA7B_PARAMS = 6.74e9


def sample_bases() -> dict[str, np.ndarray]:
    from pipeline.datasets import sample_album as sample

    a, g = sample.astronaut(), sample.grace_hopper()
    return {
        "astronaut": a,
        "grace_hopper": g,
        "side_by_side": sample.side_by_side(a, g),
        "flip": sample.flip(g),
        "crop": sample.crop(a, 0.0, 0.1, 0.8, 0.9),
        "no_face": sample.no_face(),
    }


class PhotoMaker:
    """Writes copies of the sample photos with distinct pixels (a coloured bottom strip)."""

    def __init__(self, folder: Path, seed: int = 0) -> None:
        self.folder = folder
        self.bases = sample_bases()
        self.rng = np.random.default_rng(seed)
        self.count = 0

    def make(self, kind: str) -> Path:
        from pipeline.datasets import sample_album as sample

        img = self.bases[kind].copy()
        img[-6:, :, :] = self.rng.integers(0, 255, size=3)
        self.count += 1
        return sample.save(img, self.folder / f"{kind}-{self.count:05d}.jpg")

    def make_n(self, n: int) -> list[Path]:
        kinds = list(self.bases)
        return [self.make(kinds[i % len(kinds)]) for i in range(n)]


class StageTimers:
    """Wraps the functions the worker calls and accumulates seconds per stage."""

    def __init__(self, profile) -> None:
        self.profile = profile
        self.seconds: dict[str, float] = defaultdict(float)

    def _wrap(self, stage: str, fn):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[stage] += time.perf_counter() - start

        return timed

    @contextmanager
    def active(self):
        import pipeline.photos.decode
        import pipeline.tagging.batch
        from pipeline.recognition.faces import FaceModel

        saved = [
            (pipeline.photos.decode, "decode_photo", pipeline.photos.decode.decode_photo),
            (FaceModel, "detect", FaceModel.detect),
            (pipeline.tagging.batch, "_write", pipeline.tagging.batch._write),
        ]
        pipeline.photos.decode.decode_photo = self._wrap("decode", pipeline.photos.decode.decode_photo)
        FaceModel.detect = self._wrap("faces", FaceModel.detect)
        pipeline.tagging.batch._write = self._wrap("db_write", pipeline.tagging.batch._write)
        self.profile.recognition_scores = self._wrap("recognition", self.profile.recognition_scores)
        self.profile.describe = self._wrap("describe", self.profile.describe)
        try:
            yield self
        finally:
            for owner, name, value in saved:
                setattr(owner, name, value)
            del self.profile.recognition_scores, self.profile.describe

    def reset(self) -> None:
        self.seconds.clear()


def ingest(paths: list[Path]) -> list[int]:
    from pipeline.ingest.ingestor import Ingestor

    ingestor = Ingestor(sender=None)
    ids = [ingestor.file_ready(p) for p in paths]
    assert all(i is not None for i in ids), "every new photo is queued"
    return ids  # type: ignore[return-value]


def run_worker(ids: list[int], settings, task: str) -> float:
    from pipeline.tagging.batch import process_photos

    start = time.perf_counter()
    outcome = process_photos(ids, task, settings)
    elapsed = time.perf_counter() - start
    if sorted(outcome.done) != sorted(ids):
        raise RuntimeError(f"worker did not finish every photo: {outcome}")
    return elapsed


def med(values) -> float:
    return float(statistics.median(values))


def prompt_tokens(engine, images, present, questions) -> dict[str, float]:
    """LM input tokens per photo for describe, plain vs prefix reuse (excluding padding)."""
    from pipeline.plvm.lvlm import LvlmRequest
    from pipeline.plvm.prompts import CAPTION_QUESTION

    lvlm = engine.load_lvlm()
    prompts = [CAPTION_QUESTION, *questions]
    requests = [LvlmRequest(im, q, who) for im, who in zip(images, present, strict=True) for q in prompts]
    encoded = lvlm.prepare(requests)
    per_photo = len(prompts)
    plain = sum(len(e.ids) for e in encoded) / len(images)
    reused = sum(
        encoded[i].prefix_len + sum(len(e.ids) - e.prefix_len for e in encoded[i : i + per_photo])
        for i in range(0, len(encoded), per_photo)
    ) / len(images)
    return {
        "prefix_tokens": encoded[0].prefix_len,
        "tail_tokens_mean": float(np.mean([len(e.ids) - e.prefix_len for e in encoded])),
        "image_tokens": lvlm.n_image_tokens,
        "plain_tokens_per_photo": plain,
        "reuse_tokens_per_photo": reused,
    }


def llava7b_projection(n_people: int, n_prompts: int, max_new_tokens: int) -> dict[str, float]:
    """Token and FLOP accounting of describe for LLaVA-1.5-7B (2 * params FLOPs per token + attention)."""
    c = LLAVA7B
    prefix = 1 + c["system_tokens"] + c["per_person"] * n_people + c["user_tokens"] + c["image_tokens"]
    tail = c["tail_tokens"]
    plain = n_prompts * (prefix + tail)
    reused = prefix + n_prompts * tail
    layers, hidden = 32, 4096

    def attention_flops(q_len: int, kv_len: int) -> float:  # QK^T and AV, all layers
        return 4.0 * layers * hidden * q_len * kv_len

    def prefill_flops(tokens: int, attn: float) -> float:
        return 2.0 * LLAMA7B_PARAMS * tokens + attn

    plain_f = prefill_flops(plain, n_prompts * attention_flops(prefix + tail, (prefix + tail) / 2))
    reuse_f = prefill_flops(
        reused, attention_flops(prefix, prefix / 2) + n_prompts * attention_flops(tail, prefix + tail / 2)
    )
    decode_f = n_prompts * max_new_tokens * 2.0 * LLAMA7B_PARAMS  # the same with or without reuse
    return {
        "prefix_tokens": prefix,
        "prefix_share_of_prompt": prefix / (prefix + tail),
        "prefill_tokens_plain": plain,
        "prefill_tokens_reuse": reused,
        "prefill_tflop_plain": plain_f / 1e12,
        "prefill_tflop_reuse": reuse_f / 1e12,
        "prefill_speedup": plain_f / reuse_f,
        "decode_tflop": decode_f / 1e12,
        "kv_cache_mb_per_row": 2 * layers * hidden * 2 * (prefix + tail + max_new_tokens) / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="latency rounds over the 6 sample photos")
    parser.add_argument("--throughput-n", type=int, default=32, help="photos per throughput run")
    parser.add_argument("--throughput-repeats", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5, help="repeats of engine-level timings")
    parser.add_argument("--max-new-tokens", type=int, default=40)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (0: torch's default)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "plvm.json")
    args = parser.parse_args()

    import torch

    if args.threads:  # tiny ops on a shared 2-core box: more threads only add spin-wait contention
        torch.set_num_threads(args.threads)

    from pipeline.config import DEFAULT_QUESTIONS

    tmp = tempfile.TemporaryDirectory(prefix="bench-plvm-")
    root = Path(tmp.name)
    from pipeline.plvm.tiny import write_tiny_bundle

    start = time.perf_counter()
    bundle = write_tiny_bundle(root / "bundle")
    bundle_s = time.perf_counter() - start
    for key in [k for k in os.environ if k.startswith("PIPELINE_")]:
        del os.environ[key]
    os.environ.update(
        PIPELINE_DATA_DIR=str(root / "data"),
        PIPELINE_PROFILE="tiny",
        PIPELINE_TINY_BUNDLE=str(bundle),
        PIPELINE_DEVICE="cpu",
        PIPELINE_DTYPE="float32",
        PIPELINE_MAX_NEW_TOKENS=str(args.max_new_tokens),
    )
    from pipeline import profiles
    from pipeline.config import get_settings
    from pipeline.datasets import sample_album as sample
    from pipeline.people.enrolment import enroll
    from pipeline.photos.decode import decode_photo
    from pipeline.plvm.embeddings import Person
    from pipeline.store.db import session_scope, upgrade

    get_settings.cache_clear()
    settings = get_settings()
    upgrade()
    profile = profiles.get_profile(settings)
    engine = profile.engine  # PlvmEngine.from_settings(settings)
    results: dict = {
        "machine": {"torch": torch.__version__, "threads": torch.get_num_threads(), "cpus": os.cpu_count()},
        "settings": {
            "profile": "tiny",
            "device": "cpu",
            "dtype": "float32",
            "max_new_tokens": args.max_new_tokens,
            "questions": list(DEFAULT_QUESTIONS),
            "engine_max_batch": engine.max_batch,
        },
        "bundle_write_s": bundle_s,
    }

    # Cold load + enrolment ----------------------------------------------------------------------
    a, g = sample.astronaut(), sample.grace_hopper()
    refs = {
        "Eileen": sample.save(sample.crop(a, 0.0, 0.2, 0.6, 0.8), root / "refs" / "eileen.jpg"),
        "Grace": sample.save(sample.crop(g, 0.0, 0.1, 0.7, 0.9), root / "refs" / "grace.jpg"),
    }
    ref_images = {n: decode_photo(p, settings.max_image_pixels).image for n, p in refs.items()}
    start = time.perf_counter()
    engine.encode_references([ref_images["Eileen"]])
    cold_reference = time.perf_counter() - start
    enrol_ms = []
    for _ in range(args.repeats):
        for img in ref_images.values():
            start = time.perf_counter()
            engine.encode_references([img])
            enrol_ms.append(1e3 * (time.perf_counter() - start))
    start = time.perf_counter()
    engine.load_lvlm()
    cold_llava = time.perf_counter() - start
    with session_scope() as session:
        for name, path in refs.items():
            enroll(session, settings, name, [path])
    results["cold_load_s"] = {"reference_side_with_first_forward": cold_reference, "llava": cold_llava}
    results["enrolment_ms_per_person"] = {"median": med(enrol_ms), "min": min(enrol_ms), "n": len(enrol_ms)}

    # Worker latency split, batch 1 ----------------------------------------------------------------
    maker = PhotoMaker(root / "album")
    timers = StageTimers(profile)
    latency: dict[str, list[dict[str, float]]] = defaultdict(list)
    with timers.active():
        run_worker(ingest(maker.make_n(2)), settings, "warm-up")  # face model + first LLaVA call
        for r in range(args.rounds):
            for kind in maker.bases:
                (photo_id,) = ingest([maker.make(kind)])
                timers.reset()
                total = run_worker([photo_id], settings, f"lat-{r}-{kind}")
                row = {s: 1e3 * timers.seconds.get(s, 0.0) for s in STAGES}
                row["other"] = 1e3 * total - sum(row.values())
                row["total"] = 1e3 * total
                latency[kind].append(row)
    columns = [*STAGES, "other", "total"]
    all_rows = [row for rows in latency.values() for row in rows]
    results["latency_ms_batch1"] = {
        "median_over_photos": {c: med([r[c] for r in all_rows]) for c in columns},
        "per_kind_median": {k: {c: med([r[c] for r in rows]) for c in columns} for k, rows in latency.items()},
        "method": "stage wrappers inside a real process_photos run; other = total - stages "
        "(claim, people index, matching, commits before the models)",
    }

    # Worker throughput ------------------------------------------------------------------------------
    throughput: dict[str, dict[str, float]] = {}
    with timers.active():
        for batch in (1, 8, 32):
            per = settings.model_copy(update={"batch_size": batch})
            rates: dict[str, list[float]] = defaultdict(list)
            for rep in range(args.throughput_repeats):
                for reuse in (True, False):  # interleaved, so drift on a shared box hits both alike
                    engine.reuse_prefix = reuse
                    key = "reuse_on" if reuse else "reuse_off"
                    ids = ingest(maker.make_n(args.throughput_n))
                    timers.reset()
                    elapsed = run_worker(ids, per, f"tp-{batch}-{reuse}-{rep}")
                    rates[key].append(len(ids) / elapsed)
                    rates[key + "_describe_share"].append(timers.seconds["describe"] / elapsed)
            throughput[str(batch)] = {k: med(v) for k, v in rates.items()}
    engine.reuse_prefix = True
    results["worker_photos_per_s"] = throughput

    # Engine-level describe, prefix reuse on/off ------------------------------------------------------
    with session_scope() as session:
        from pipeline.people.index import load_people_index

        index = load_people_index(session, settings, profile)
        people = [Person(p.name, p.concept) for p in index.people]
    photos = [decode_photo(p, settings.max_image_pixels).image for p in maker.make_n(32)]
    describe: dict[str, dict[str, float]] = {}
    questions = list(DEFAULT_QUESTIONS)
    for batch in (1, 8, 32):
        images = photos[:batch]
        present = [people] * batch
        describe[str(batch)] = {}
        for reuse in (True, False, True, False):  # interleaved against drift on a shared machine
            engine.reuse_prefix = reuse
            times = []
            for _ in range(max(1, args.repeats // 2)):
                start = time.perf_counter()
                engine.describe(images, present, questions)
                times.append(1e3 * (time.perf_counter() - start) / batch)
            key = "reuse_on_ms_per_photo" if reuse else "reuse_off_ms_per_photo"
            describe[str(batch)].setdefault(key, []).extend(times)  # type: ignore[attr-defined]
        for key in list(describe[str(batch)]):
            describe[str(batch)][key] = med(describe[str(batch)][key])  # type: ignore[arg-type]
    engine.reuse_prefix = True
    same = engine.describe(photos[:4], [people] * 4, questions)
    engine.reuse_prefix = False
    same_off = engine.describe(photos[:4], [people] * 4, questions)
    engine.reuse_prefix = True
    results["describe_engine"] = describe
    results["describe_same_output_on_off"] = same == same_off
    results["tokens_tiny"] = prompt_tokens(engine, photos[:2], [people] * 2, questions)
    results["llava7b_projection_2_people_4_prompts"] = llava7b_projection(2, 1 + len(questions), args.max_new_tokens)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)
    print(f"\nwritten {args.out}")
    tmp.cleanup()


def print_table(r: dict) -> None:
    print(
        f"PLVM tiny bundle on CPU (torch {r['machine']['torch']}, {r['machine']['threads']} threads), "
        f"max_new_tokens {r['settings']['max_new_tokens']}, 3 default questions + caption"
    )
    cold = r["cold_load_s"]
    print(
        f"cold load: DINOv2+Aligner {cold['reference_side_with_first_forward']:.2f} s (with 1st forward), "
        f"LLaVA {cold['llava']:.2f} s"
    )
    e = r["enrolment_ms_per_person"]
    print(f"enrolment (DINOv2 + Aligner forward): {e['median']:.1f} ms/person (median of {e['n']})")
    print("\nworker latency per photo, batch 1 (ms, median over sample photos):")
    lat = r["latency_ms_batch1"]["median_over_photos"]
    print("  " + "  ".join(f"{k:>11}" for k in lat))
    print("  " + "  ".join(f"{v:11.1f}" for v in lat.values()))
    print("\nworker throughput (photos/s):        reuse on   reuse off   describe share (on)")
    for batch, row in r["worker_photos_per_s"].items():
        print(
            f"  batch {batch:>2}                         {row['reuse_on']:8.2f}   {row['reuse_off']:9.2f}"
            f"   {100 * row['reuse_on_describe_share']:5.0f}%"
        )
    print("\nengine.describe, 2 people present (ms/photo):  reuse on   reuse off")
    for batch, row in r["describe_engine"].items():
        on, off = row["reuse_on_ms_per_photo"], row["reuse_off_ms_per_photo"]
        print(f"  batch {batch:>2}                                 {on:8.1f}   {off:9.1f}   ({off / on:.2f}x)")
    print(f"  identical outputs with reuse on/off: {r['describe_same_output_on_off']}")
    t = r["tokens_tiny"]
    print(
        f"\nLM input tokens per photo (tiny: prefix {t['prefix_tokens']}, {t['image_tokens']} image tokens, "
        f"tails ~{t['tail_tokens_mean']:.0f}): plain {t['plain_tokens_per_photo']:.0f}, "
        f"reuse {t['reuse_tokens_per_photo']:.0f}"
    )
    p = r["llava7b_projection_2_people_4_prompts"]
    print(
        f"LLaVA-1.5-7B layout: prefix {p['prefix_tokens']} tokens "
        f"({100 * p['prefix_share_of_prompt']:.0f}% of a prompt); "
        f"prefill tokens/photo {p['prefill_tokens_plain']} -> {p['prefill_tokens_reuse']}; "
        f"prefill {p['prefill_tflop_plain']:.1f} -> {p['prefill_tflop_reuse']:.1f} TFLOP "
        f"({p['prefill_speedup']:.1f}x); "
        f"decode {p['decode_tflop']:.1f} TFLOP either way"
    )


if __name__ == "__main__":
    main()
