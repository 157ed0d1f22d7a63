"""PLVM at the real model shapes on a GPU, with random weights (nothing downloaded).

    python bench/gpu_plvm.py [--repeats 3] [--max-new-tokens 40] [--max-batch 16] [--out bench/out/gpu_plvm.json]
    python bench/gpu_plvm.py --dry-run-cpu-tiny      # the same measurement code, tiny bundle on CPU (< 2 min)

Models, built from configs straight on the device in float16 (``torch.device(...)`` context +
``_from_config(dtype=...)``: parameters are allocated and randomly initialised on the GPU, never
on the CPU, and buffers such as the rotary ``inv_freq`` are computed as usual -- ``to_empty``
would leave them uninitialised):

- reference encoder: ``Dinov2Model(Dinov2Config())`` = DINOv2-base (hidden 768, 12 layers, 12
  heads, patch 14, 224 px -> 1 + 16 x 16 = 257 tokens), DINOv2's 256 -> 224 transform;
- Aligner: the released checkpoint's sizes (``AlignerConfig()``, 41.3 M parameters), float32
  as the engine runs it (it reads float32 z_ref);
- LVLM: ``LlavaForConditionalGeneration`` with a CLIP ViT-L/14-336 vision config (hidden 1024,
  24 layers, 16 heads, 336 px, feature layer -2, "default" select -> 576 image tokens) and a
  LLaMA-7B text config (hidden 4096, 32 layers, 32 heads, intermediate 11008, vocabulary 32064,
  untied LM head): 7.06 B parameters, like llava-hf/llava-1.5-7b-hf;
- tokenizer: the tiny bundle's BPE tokenizer (:func:`pipeline.plvm.tiny.train_tokenizer`, ~330
  ids, trained on these exact prompts) with the model's embedding/LM head at the real 32064 rows:
  every step pays the full 4096 x 32064 LM head; ids 400.. are unused rows, masked from generation
  like any non-concept added row. Its prompts are a little shorter than LLaMA's (the printed
  prefix/tail token counts say by how much; 576 image tokens dominate either way);
- image processor: CLIPImageProcessor (PIL backend) 336 px, OpenAI CLIP mean/std.

Measures (CUDA-synchronised wall time, median of ``--repeats`` after a warm-up call): enrolment
ms/person; recognition scoring ms/photo with 2 and 5 people (1 photo, and 8 photos per call);
caption + 3 answers for one photo; photos/s at batch 1/8/32 (recognition of 2 people + describe
with 2 present, the worker's model work without decode/faces/DB), each with prefix reuse on and
off; peak GPU memory per stage; the card name. Prints a table, writes JSON.

Smoke test of the real-shape build on a CPU box (slow; full widths, fewer layers):
    python bench/gpu_plvm.py --device cpu --dtype float32 --layers 1 --batches 1 --max-new-tokens 2 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

NAMES = ["Eileen", "Grace", "Susan", "Mike", "Anna"]
TEXT_7B = dict(
    vocab_size=32064,
    hidden_size=4096,
    intermediate_size=11008,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=32,
    max_position_embeddings=4096,
    rms_norm_eps=1e-5,
    hidden_act="silu",
)
VISION_L14_336 = dict(
    hidden_size=1024,
    intermediate_size=4096,
    num_hidden_layers=24,
    num_attention_heads=16,
    image_size=336,
    patch_size=14,
    projection_dim=768,
    hidden_act="quick_gelu",
)


# Building ---------------------------------------------------------------------------------------
def build_real(device: str, dtype_name: str, layers: int | None, max_new_tokens: int, max_batch: int):
    """A PlvmEngine whose parts are random-weight models of the real shapes, built on ``device``."""
    import torch
    from transformers import (
        CLIPVisionConfig,
        Dinov2Config,
        Dinov2Model,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    from pipeline.plvm.aligner import Aligner, AlignerConfig
    from pipeline.plvm.engine import PlvmEngine, PlvmSources
    from pipeline.plvm.lvlm import Lvlm
    from pipeline.plvm.reference import ReferenceEncoder
    from pipeline.plvm.tiny import train_tokenizer
    from pipeline.plvm.transforms import ReferenceTransform

    dtype = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}[dtype_name]
    dev = torch.device(device)
    depth = lambda n: n if layers is None else min(n, layers)  # noqa: E731
    timings = {}

    start = time.perf_counter()
    torch.manual_seed(0)
    dino_cfg = Dinov2Config()
    dino_cfg.num_hidden_layers = depth(dino_cfg.num_hidden_layers)
    with dev:
        dino = Dinov2Model._from_config(dino_cfg, dtype=dtype)
        aligner = Aligner(AlignerConfig())  # float32
    encoder = ReferenceEncoder(dino, ReferenceTransform(), dino_cfg.hidden_size, "transformers")
    _sync(dev)
    timings["reference_side_build_s"] = time.perf_counter() - start

    start = time.perf_counter()
    tokenizer = train_tokenizer()
    text = LlamaConfig(
        **{**TEXT_7B, "num_hidden_layers": depth(TEXT_7B["num_hidden_layers"])},
        tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    vision = CLIPVisionConfig(**{**VISION_L14_336, "num_hidden_layers": depth(VISION_L14_336["num_hidden_layers"])})
    config = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        image_seq_length=576,
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
        projector_hidden_act="gelu",
        tie_word_embeddings=False,
    )
    with dev:
        model = LlavaForConditionalGeneration._from_config(config, dtype=dtype)
    image_processor = CLIPImageProcessorPil(size={"shortest_edge": 336}, crop_size={"height": 336, "width": 336})
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=14,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
    )
    lvlm = Lvlm(model, processor, max_batch=max_batch)
    _sync(dev)
    timings["llava_build_s"] = time.perf_counter() - start

    sources = PlvmSources(
        dinov2="random:dinov2-base",
        llava="random:llava-1.5-7b",
        aligner=Path("random-aligner.ckpt"),
        random_weights=True,
        label="random",
    )
    engine = PlvmEngine(sources, device=device, dtype=dtype_name, max_new_tokens=max_new_tokens, max_batch=max_batch)
    # Inject the built parts (the engine would otherwise load them from local folders).
    engine._encoder, engine._aligner, engine._lvlm = encoder, aligner, lvlm
    info = {
        "kind": "real-shapes-random" if layers is None else f"real-widths-{layers}-layers-random",
        "params_llava": sum(p.numel() for p in model.parameters()),
        "params_dinov2": sum(p.numel() for p in dino.parameters()),
        "params_aligner": sum(p.numel() for p in aligner.parameters()),
        "dtype": dtype_name,
        "tokenizer": f"tiny bundle BPE ({len(tokenizer)} ids), model vocab {TEXT_7B['vocab_size']}",
        **timings,
    }
    return engine, info


def build_tiny_cpu(max_new_tokens: int, max_batch: int, folder: Path):
    """The tiny bundle, loaded through the engine's own loaders, on CPU in float32."""
    from pipeline.plvm.engine import PlvmEngine, tiny_sources
    from pipeline.plvm.tiny import write_tiny_bundle

    start = time.perf_counter()
    bundle = write_tiny_bundle(folder / "tiny-bundle")
    engine = PlvmEngine(tiny_sources(bundle), "cpu", "float32", max_new_tokens=max_new_tokens, max_batch=max_batch)
    lvlm = engine.load_lvlm()
    info = {
        "kind": "tiny-bundle-cpu",
        "params_llava": sum(p.numel() for p in lvlm.model.parameters()),
        "dtype": "float32",
        "build_s": time.perf_counter() - start,
    }
    return engine, info


# Inputs -----------------------------------------------------------------------------------------
def sample_images(n: int):
    """n distinct RGB photos: the public-domain sample photos (pipeline.datasets.sample_album) with a coloured strip,
    or random pictures if scikit-image/matplotlib are missing."""
    from PIL import Image

    rng = np.random.default_rng(0)
    try:
        from pipeline.datasets import sample_album as sample

        a, g = sample.astronaut(), sample.grace_hopper()
        bases = [a, g, sample.side_by_side(a, g), sample.flip(g), sample.crop(a, 0.0, 0.1, 0.8, 0.9), sample.no_face()]
        refs = [sample.crop(a, 0.0, 0.2, 0.6, 0.8), sample.crop(g, 0.0, 0.1, 0.7, 0.9)]
    except ImportError:
        bases = [(rng.random((480, 640, 3)) * 255).astype("uint8") for _ in range(6)]
        refs = [(rng.random((300, 300, 3)) * 255).astype("uint8") for _ in range(2)]
    photos = []
    for i in range(n):
        img = bases[i % len(bases)].copy()
        img[-6:, :, :] = rng.integers(0, 255, size=3)
        photos.append(Image.fromarray(img))
    references = []
    for i in range(len(NAMES)):
        img = refs[i % len(refs)].copy()
        img[:4, :, :] = rng.integers(0, 255, size=3)
        references.append(Image.fromarray(img))
    return photos, references


# Measuring --------------------------------------------------------------------------------------
def _sync(device) -> None:
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


class Meter:
    """Median wall time of a call (after one warm-up call) and the peak device memory it reached."""

    def __init__(self, device, repeats: int) -> None:
        import torch

        self.device = torch.device(device)
        self.cuda = self.device.type == "cuda"
        self.repeats = repeats
        self.peak_gib = 0.0  # highest peak over every measured call

    def __call__(self, fn, warmup: bool = True) -> dict[str, float]:
        import torch

        if warmup:
            fn()
        if self.cuda:
            _sync(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        times = []
        for _ in range(self.repeats):
            start = time.perf_counter()
            fn()
            _sync(self.device)
            times.append(time.perf_counter() - start)
        out = {"s": float(statistics.median(times)), "min_s": min(times)}
        if self.cuda:
            out["peak_gib"] = torch.cuda.max_memory_allocated(self.device) / 2**30
            self.peak_gib = max(self.peak_gib, out["peak_gib"])
        return out


def measure(engine, device: str, repeats: int, batches: list[int], people_counts: list[int]) -> dict:
    """The measurement code shared by the GPU run and the tiny CPU dry run."""
    from pipeline.config import DEFAULT_QUESTIONS
    from pipeline.plvm.embeddings import Person
    from pipeline.plvm.lvlm import LvlmRequest
    from pipeline.plvm.prompts import CAPTION_QUESTION

    meter = Meter(device, repeats)
    questions = list(DEFAULT_QUESTIONS)
    photos, references = sample_images(max(batches + [8]))
    r: dict = {"questions": questions, "max_new_tokens": engine.max_new_tokens, "max_batch": engine.max_batch}

    # Enrolment: DINOv2 + Aligner, one reference image per person
    engine.encode_references([references[0]])  # warm-up
    enrol = [meter(lambda ref=ref: engine.encode_references([ref]), warmup=False) for ref in references]
    r["enrolment_ms_per_person"] = 1e3 * statistics.median(m["s"] for m in enrol)
    people = [Person(name, engine.encode_references([ref])) for name, ref in zip(NAMES, references, strict=True)]
    present = people[:2]

    # Prompt layout (tokens) and the tokens each mode feeds the language model for one photo
    lvlm = engine.load_lvlm()
    prompts = [CAPTION_QUESTION, *questions]
    encoded = lvlm.prepare([LvlmRequest(photos[0], q, present) for q in prompts])
    prefix = encoded[0].prefix_len
    tails = [len(e.ids) - prefix for e in encoded]
    r["prompt"] = {
        "prefix_tokens_2_people": prefix,
        "image_tokens": lvlm.n_image_tokens,
        "tail_tokens": tails,
        "lm_tokens_per_photo_plain": sum(len(e.ids) for e in encoded),
        "lm_tokens_per_photo_reuse": prefix + sum(tails),
    }
    generated = lvlm.generate_tokens([LvlmRequest(photos[0], q, present) for q in prompts], engine.max_new_tokens)
    eos = lvlm.tokenizer.eos_token_id
    r["generated_tokens_per_prompt"] = [g.ids.index(eos) + 1 if eos in g.ids else len(g.ids) for g in generated]

    # Recognition scoring: P(yes) per (photo, person)
    rec = {}
    for n_people in people_counts:
        for n_photos in (1, 8):
            m = meter(lambda n=n_people, k=n_photos: engine.recognition_scores_batch(photos[:k], people[:n]))
            rec[f"{n_people}_people_{n_photos}_photos"] = {
                "ms_per_photo": 1e3 * m["s"] / n_photos,
                **({"peak_gib": m["peak_gib"]} if "peak_gib" in m else {}),
            }
    r["recognition"] = rec

    # Caption + 3 answers, and the worker's model work per batch, prefix reuse on/off
    per_batch: dict[str, dict] = {}
    for batch in batches:
        images = photos[:batch]
        row: dict[str, float] = {}
        for reuse in (True, False):
            engine.reuse_prefix = reuse
            key = "on" if reuse else "off"
            d = meter(lambda images=images, batch=batch: engine.describe(images, [present] * batch, questions))
            w = meter(
                lambda images=images, batch=batch: (
                    engine.recognition_scores_batch(images, present),
                    engine.describe(images, [present] * batch, questions),
                )
            )
            row[f"describe_ms_per_photo_{key}"] = 1e3 * d["s"] / batch
            row[f"photos_per_s_{key}"] = batch / w["s"]
            if "peak_gib" in d:
                row[f"describe_peak_gib_{key}"] = d["peak_gib"]
                row[f"worker_peak_gib_{key}"] = w["peak_gib"]
        engine.reuse_prefix = True
        per_batch[str(batch)] = row
    r["per_batch"] = per_batch
    if meter.cuda:
        r["peak_gib_max"] = meter.peak_gib
    return r


# Output -----------------------------------------------------------------------------------------
def print_table(res: dict) -> None:
    m = res["measures"]
    print(
        f"device: {res['device_name']} | models: {res['build']['kind']} "
        f"({res['build']['params_llava'] / 1e6:,.1f} M LLaVA "
        f"params, {res['build']['dtype']}) | max_new_tokens {m['max_new_tokens']}, engine max_batch {m['max_batch']}"
    )
    p = m["prompt"]
    print(
        f"prompt: prefix {p['prefix_tokens_2_people']} tokens ({p['image_tokens']} image) with 2 people, tails "
        f"{p['tail_tokens']}; LM tokens/photo plain {p['lm_tokens_per_photo_plain']} "
        f"-> reuse {p['lm_tokens_per_photo_reuse']}; "
        f"generated tokens/prompt {m['generated_tokens_per_prompt']}"
    )
    print(f"enrolment: {m['enrolment_ms_per_person']:.1f} ms/person")
    print("recognition (ms/photo):  " + ", ".join(f"{k} {v['ms_per_photo']:.1f}" for k, v in m["recognition"].items()))
    print("batch | describe ms/photo on / off | photos/s on / off | peak GiB on / off")
    for batch, row in m["per_batch"].items():
        peak = (
            f"{row['worker_peak_gib_on']:.1f} / {row['worker_peak_gib_off']:.1f}"
            if "worker_peak_gib_on" in row
            else "-"
        )
        print(
            f"{batch:>5} | {row['describe_ms_per_photo_on']:10.1f} / {row['describe_ms_per_photo_off']:8.1f}"
            f" ({row['describe_ms_per_photo_off'] / row['describe_ms_per_photo_on']:.2f}x) |"
            f" {row['photos_per_s_on']:7.2f} / {row['photos_per_s_off']:6.2f} | {peak}"
        )
    if "peak_gib_total" in res:
        print(f"peak GPU memory over the run: {res['peak_gib_total']:.1f} GiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run-cpu-tiny", action="store_true", help="tiny bundle on CPU, same measurements")
    parser.add_argument("--device", default=None, help="default: cuda (cpu with --dry-run-cpu-tiny)")
    parser.add_argument("--dtype", default="float16", choices=["float16", "bfloat16", "float32"])
    parser.add_argument("--layers", type=int, default=None, help="cap every model's depth (smoke tests only)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-new-tokens", type=int, default=40)
    parser.add_argument("--max-batch", type=int, default=16, help="rows per forward pass (the engine's default)")
    parser.add_argument("--batches", default="1,8,32", help="photos per call, comma-separated")
    parser.add_argument("--people", default="2,5", help="people scored per photo, comma-separated")
    parser.add_argument("--threads", type=int, default=1, help="CPU torch threads on CPU runs (0: default)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    import torch

    batches = [int(b) for b in args.batches.split(",")]
    people_counts = [int(n) for n in args.people.split(",")]
    device = args.device or ("cpu" if args.dry_run_cpu_tiny else "cuda")
    if device == "cpu" and args.threads:
        torch.set_num_threads(args.threads)
    if torch.device(device).type == "cuda" and not torch.cuda.is_available():
        sys.exit("no CUDA device: run on a GPU machine, or use --dry-run-cpu-tiny")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gpu-plvm-") as tmp:
        if args.dry_run_cpu_tiny:
            engine, build = build_tiny_cpu(args.max_new_tokens, args.max_batch, Path(tmp))
        else:
            engine, build = build_real(device, args.dtype, args.layers, args.max_new_tokens, args.max_batch)
        cuda = torch.device(device).type == "cuda"
        res = {
            "device_name": torch.cuda.get_device_name(device)
            if cuda
            else f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads)",
            "torch": torch.__version__,
            "build": build,
        }
        if cuda:
            res["weights_gib"] = torch.cuda.memory_allocated(device) / 2**30
            torch.cuda.reset_peak_memory_stats(device)
        res["measures"] = measure(engine, device, args.repeats, batches, people_counts)
        if cuda:
            res["peak_gib_total"] = res["measures"]["peak_gib_max"]
        else:
            res["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    res["wall_s"] = time.perf_counter() - start
    print_table(res)
    out = args.out or (REPO / "bench" / "out" / ("gpu_plvm_dry_run.json" if args.dry_run_cpu_tiny else "gpu_plvm.json"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"written {out} ({res['wall_s']:.0f} s)")


if __name__ == "__main__":
    main()
