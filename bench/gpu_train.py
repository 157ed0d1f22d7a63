"""Aligner training throughput on a GPU with random-weight models of the REAL shapes (no download).

Builds, from configs only: DINOv2-base (ViT-B/14, 257 x 768 tokens at 224 px), LLaVA-1.5-7B
(CLIP ViT-L/14-336 -> 576 image tokens, Vicuna-7B shapes: hidden 4096, 32 layers, vocabulary
32064) directly on the GPU in float16, a 32000-entry LLaMA-like BPE tokenizer trained on random
words, and the release-size Aligner (41,272,832 parameters). Then runs the SAME training code as
`pipeline train` (:func:`pipeline.plvm.train.train_aligner` with pre-built frozen models) on a
small procedural identity dataset, and prints steps/s, trained tokens/s and peak GPU memory.

    python bench/gpu_train.py --steps 30 --batch-size 4                  # H100/H200
    python bench/gpu_train.py --dry-run-cpu-tiny                         # same code, tiny bundle, CPU

Weights are random: the loss says nothing about quality; only speed and memory are meaningful.
The first steps include CUDA warm-up; the figures exclude ``--warmup-steps`` (default 3). Tokens are
the real (non-pad) positions the LVLM runs on (prompt with 576 image rows + answer), forward and
backward.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

# Published shapes (config.json of facebook/dinov2-base and llava-hf/llava-1.5-7b-hf).
DINOV2_BASE = dict(
    hidden_size=768,
    num_hidden_layers=12,
    num_attention_heads=12,
    mlp_ratio=4,
    image_size=518,
    patch_size=14,
    layerscale_value=1.0,
)
CLIP_L_336 = dict(
    hidden_size=1024,
    intermediate_size=4096,
    num_hidden_layers=24,
    num_attention_heads=16,
    image_size=336,
    patch_size=14,
    projection_dim=768,
    hidden_act="quick_gelu",
)
VICUNA_7B = dict(
    hidden_size=4096,
    intermediate_size=11008,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=32,
    max_position_embeddings=4096,
    rms_norm_eps=1e-5,
)
LLAVA_VOCAB = 32064


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=30, help="optimizer steps (default 30)")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--accum", type=int, default=1)
    p.add_argument("--warmup-steps", type=int, default=3, help="steps left out of the timing")
    p.add_argument("--precision", choices=["fp16", "bf16"], default="fp16", help="autocast dtype (and model dtype)")
    p.add_argument("--gradient-checkpointing", action="store_true")
    p.add_argument("--layers", type=int, default=None, help="LLaMA layers (default 32; fewer for a quick check)")
    p.add_argument("--no-cache-features", action="store_true", help="run the vision tower every step (default: cached)")
    p.add_argument("--identities", type=int, default=16)
    p.add_argument("--queries", type=int, default=4)
    p.add_argument("--json", type=Path, default=None, help="write the figures here")
    p.add_argument(
        "--device",
        default="cuda",
        help="cuda, cuda:N; 'cpu' builds the real shapes on the CPU "
        "(slow; use with --layers 1 --steps 2 --batch-size 1 as a shape check)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--dry-run-cpu-tiny", action="store_true", help="same code on the tiny bundle, on the CPU (seconds)")
    return p.parse_args(argv)


def bench_tokenizer(vocab_size: int = 32000):
    """A LLaMA-like BPE tokenizer (Metaspace, BOS template, the tiny bundle's special tokens) with
    ``vocab_size`` entries: the tiny bundle's corpus plus random words (about 3 s)."""
    import numpy as np
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    from pipeline.plvm.prompts import ASSISTANT, RECOGNITION_QUESTION, SYSTEM_PROMPT, USER
    from pipeline.plvm.tiny import EXTRA_CORPUS, SPECIAL_TOKENS

    rng = np.random.default_rng(0)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words = ["".join(rng.choice(letters, size=int(rng.integers(2, 9)))) for _ in range(60000)]
    corpus = [" ".join(words[i : i + 50]) for i in range(0, len(words), 50)] * 2
    corpus += [SYSTEM_PROMPT, RECOGNITION_QUESTION.replace("<sks>", ""), USER + ASSISTANT, EXTRA_CORPUS] * 50
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
    alphabet = list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,?!'\":;-()\n")
    tok.train_from_iterator(
        corpus,
        trainers.BpeTrainer(
            vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, initial_alphabet=alphabet, show_progress=False
        ),
    )
    bos = tok.token_to_id("<s>")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        extra_special_tokens={"image_token": "<image>"},
    )


def real_shape_models(device: Any, dtype: Any, layers: int | None) -> Any:
    """Random DINOv2-base + LLaVA-1.5-7B shapes, built directly on ``device`` in ``dtype``
    (no CPU initialisation, no download). Returns FrozenModels (no engine: no evaluation)."""
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

    from pipeline.plvm.lvlm import Lvlm
    from pipeline.plvm.reference import ReferenceEncoder
    from pipeline.plvm.train import FrozenModels
    from pipeline.plvm.transforms import ReferenceTransform

    tokenizer = bench_tokenizer()
    text = dict(VICUNA_7B, num_hidden_layers=layers or VICUNA_7B["num_hidden_layers"])
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(**CLIP_L_336),
        text_config=LlamaConfig(
            vocab_size=max(LLAVA_VOCAB, len(tokenizer)),
            tie_word_embeddings=False,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            **text,
        ),
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
        projector_hidden_act="gelu",
        tie_word_embeddings=False,
    )
    with torch.device(device):
        llava = LlavaForConditionalGeneration._from_config(config, dtype=dtype)
        dinov2 = Dinov2Model._from_config(Dinov2Config(**DINOV2_BASE), dtype=dtype)
    side = CLIP_L_336["image_size"]
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessorPil(size={"shortest_edge": side}, crop_size={"height": side, "width": side}),
        tokenizer=tokenizer,
        patch_size=CLIP_L_336["patch_size"],
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
    )
    encoder = ReferenceEncoder(dinov2, ReferenceTransform(), DINOV2_BASE["hidden_size"], "transformers")
    return FrozenModels(encoder, Lvlm(llava, processor))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Build the models, train ``--steps`` steps, print (and return) the figures."""
    args = parse_args(argv)
    import torch

    from pipeline.config import Settings
    from pipeline.datasets.toy import make_toy_identities
    from pipeline.plvm.aligner import count_parameters
    from pipeline.plvm.checkpoint import load_aligner
    from pipeline.plvm.train import TrainConfig, load_frozen_models, train_aligner

    tiny = args.dry_run_cpu_tiny
    device = torch.device("cpu" if tiny else args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device; use --dry-run-cpu-tiny to run the same code on the CPU")
    cuda = device.type == "cuda"
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}[args.precision] if cuda else torch.float32
    work = Path(tempfile.mkdtemp(prefix="gpu-train-"))
    data = make_toy_identities(work / "data", args.identities, args.queries, seed=0, size=112)
    config = TrainConfig(
        data_dir=data,
        out=work / "aligner.ckpt",
        steps=args.steps,
        batch_size=args.batch_size,
        grad_accum=args.accum,
        lr=1e-4,
        warmup_steps=min(10, args.steps),
        held_out_identities=0.0,
        held_out_query_fraction=0.0,
        precision=args.precision if cuda else "no",
        gradient_checkpointing=args.gradient_checkpointing,
        cache_features=not args.no_cache_features,
        final_eval=False,
        progress=not args.quiet,
    )
    started = time.perf_counter()
    if tiny:
        from pipeline.plvm.tiny import write_tiny_bundle

        settings = Settings(
            profile="tiny", tiny_bundle=write_tiny_bundle(work / "tiny"), device="cpu", dtype="float32", data_dir=work
        )
        config.aligner_sizes = {"depth": 1, "heads": 2, "head_dim": 16, "weight_head_width": 32}
        models = load_frozen_models(settings, config)
    else:
        settings = Settings(profile="plvm", device=str(device), data_dir=work)
        models = real_shape_models(device, dtype, args.layers)
    build_s = time.perf_counter() - started
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    result = train_aligner(config, settings, models=models)
    seconds, tokens = result.step_seconds[args.warmup_steps :], result.step_tokens[args.warmup_steps :]
    figures = {
        "device": torch.cuda.get_device_name(device) if cuda else "cpu",
        "models": "tiny bundle (dry run)"
        if tiny
        else f"DINOv2-base + LLaVA-1.5-7B shapes, {args.layers or 32} LLaMA layers",
        "precision": str(dtype).replace("torch.", ""),
        "batch_size": args.batch_size,
        "accum": args.accum,
        "gradient_checkpointing": args.gradient_checkpointing,
        "features_cached": not args.no_cache_features,
        "build_seconds": round(build_s, 1),
        "aligner_parameters": count_parameters(load_aligner(config.out)),
        "steps_timed": len(seconds),
        "steps_per_s": round(len(seconds) / sum(seconds), 3) if seconds else None,
        "items_per_s": round(len(seconds) * args.batch_size * args.accum / sum(seconds), 2) if seconds else None,
        "tokens_per_s": round(sum(tokens) / sum(seconds), 1) if seconds else None,
        "tokens_per_step": round(sum(tokens) / len(tokens), 1) if tokens else None,
        "peak_gpu_memory_gib": round(torch.cuda.max_memory_allocated(device) / 2**30, 2) if cuda else None,
        "loss_first": round(result.losses[0], 4),
        "loss_last": round(result.losses[-1], 4),
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(figures, indent=1))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n")
    return figures


if __name__ == "__main__":
    main()
