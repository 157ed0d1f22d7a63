"""A tiny random PLVM bundle for tests and the "tiny" profile, built offline from configs.

Layout (every part saved with the same writers as real weights and loaded back through the same
loaders, from local folders)::

    <out>/bundle.json          manifest: {"random": true, "dinov2": "dinov2", "llava": "llava",
                               "aligner": "aligner.ckpt", ...}
    <out>/dinov2/              Dinov2Model (hidden 32, 2 layers, patch 14, position grid 5x5) + preprocessor_config.json
                               (shorter side 64, crop 56 -> z_ref 1 + 4*4 = 17 tokens x 32)
    <out>/llava/               LlavaForConditionalGeneration (CLIP 28 px / patch 7 -> 16 image tokens; LLaMA hidden 64)
                               + LlavaProcessor (PIL CLIP image processor, LLaMA-like BPE tokenizer)
    <out>/aligner.ckpt(.json)  Aligner(width 32 -> out_dim 64, 17 queries), plain torch state dict + sidecar
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from pipeline.plvm.aligner import Aligner, AlignerConfig
from pipeline.plvm.checkpoint import save_aligner
from pipeline.plvm.prompts import ASSISTANT, CAPTION_QUESTION, RECOGNITION_QUESTION, SYSTEM_PROMPT, USER
from pipeline.plvm.transforms import IMAGENET_MEAN, IMAGENET_STD

SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<pad>", "<image>"]
EXTRA_CORPUS = (
    "Yes No yes no . , ? ! ' : USER: ASSISTANT: is are in this photo the a an and with of at on "
    "Who What Where When How Describe people doing taken photo park beach home smiling playing standing "
    "Susan Mike Anna Tom man woman child dog A B C D 0 1 2 3 4 5 6 7 8 9"
)
DINOV2: dict[str, Any] = dict(
    hidden_size=32, num_hidden_layers=2, num_attention_heads=2, mlp_ratio=4, image_size=70, patch_size=14
)
DINOV2_PREPROCESSOR = {"shortest_edge": 64, "crop": 56}
VISION: dict[str, Any] = dict(
    hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=28, patch_size=7
)
TEXT: dict[str, Any] = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=4,
    max_position_embeddings=1024,
)
ALIGNER = AlignerConfig(
    width=32, depth=2, heads=2, head_dim=16, n_queries=17, out_dim=64, ff_mult=2, weight_head_width=48
)


def train_tokenizer(vocab_size: int = 400):
    """A LLaMA-like BPE tokenizer (Metaspace "▁", BOS prepended) as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    from pipeline.config import DEFAULT_QUESTIONS

    corpus = [
        SYSTEM_PROMPT,
        CAPTION_QUESTION,
        RECOGNITION_QUESTION.replace("<sks>", ""),
        USER + ASSISTANT,
        EXTRA_CORPUS,
        *DEFAULT_QUESTIONS,
    ] * 4
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
    alphabet = list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,?!'\":;-()\n")
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, initial_alphabet=alphabet, show_progress=False
    )
    tok.train_from_iterator(corpus, trainer)
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


def write_dinov2_preprocessor(folder: Path, shortest_edge: int, crop: int) -> None:
    """``preprocessor_config.json`` in the hub's facebook/dinov2-* format (resize, centre crop, ImageNet stats)."""
    preprocessor = {
        "image_processor_type": "BitImageProcessor",
        "do_resize": True,
        "size": {"shortest_edge": shortest_edge},
        "resample": 3,
        "do_center_crop": True,
        "crop_size": {"height": crop, "width": crop},
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "image_mean": list(IMAGENET_MEAN),
        "image_std": list(IMAGENET_STD),
        "do_convert_rgb": True,
    }
    (folder / "preprocessor_config.json").write_text(json.dumps(preprocessor, indent=2) + "\n")


def _write_dinov2(folder: Path, seed: int) -> None:
    from transformers import Dinov2Config, Dinov2Model

    torch.manual_seed(seed)
    Dinov2Model(Dinov2Config(**DINOV2)).save_pretrained(folder)
    write_dinov2_preprocessor(folder, DINOV2_PREPROCESSOR["shortest_edge"], DINOV2_PREPROCESSOR["crop"])


def tiny_llava(tokenizer, seed: int = 0, vision: dict | None = None, text: dict | None = None):
    """(random LlavaForConditionalGeneration, LlavaProcessor) of the tiny sizes around ``tokenizer``
    (a transformers tokenizer with ``<image>``; the vocabulary is sized to it). Deterministic per seed."""
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    text_config = LlamaConfig(
        vocab_size=len(tokenizer),
        tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **{**TEXT, **(text or {})},
    )
    vision = {**VISION, **(vision or {})}
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(**vision),
        text_config=text_config,
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
        projector_hidden_act="gelu",
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed + 1)
    model = LlavaForConditionalGeneration(config)
    side = vision["image_size"]
    image_processor = CLIPImageProcessorPil(size={"shortest_edge": side}, crop_size={"height": side, "width": side})
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=vision["patch_size"],
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
    )
    return model, processor


def _write_llava(folder: Path, seed: int, vision: dict | None = None, text: dict | None = None) -> None:
    model, processor = tiny_llava(train_tokenizer(), seed, vision, text)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)


def write_tiny_bundle(
    out_dir: Path,
    seed: int = 0,
    *,
    vision: dict | None = None,
    text: dict | None = None,
) -> Path:
    """Write the tiny random bundle into ``out_dir`` (created; existing files overwritten); returns it.

    Deterministic for a given seed. Takes about a second on CPU; a few MB on disk. ``vision`` and
    ``text`` override entries of :data:`VISION` and :data:`TEXT` (config fields, e.g.
    ``initializer_range``; the training demo's models); they are recorded in the manifest under
    "overrides", with the Aligner config when the text width changes it.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_dinov2(out_dir / "dinov2", seed)
    _write_llava(out_dir / "llava", seed, vision, text)
    aligner = replace(ALIGNER, out_dim={**TEXT, **(text or {})}["hidden_size"])  # fits the (resized) LVLM
    torch.manual_seed(seed + 2)
    save_aligner(Aligner(aligner), out_dir / "aligner.ckpt")
    manifest = {
        "format": 1,
        "random": True,
        "seed": seed,
        "dinov2": "dinov2",
        "llava": "llava",
        "aligner": "aligner.ckpt",
        "note": "random weights built from configs; outputs are meaningless",
    }
    overrides: dict[str, object] = {"vision": vision, "text": text}
    overrides = {k: v for k, v in overrides.items() if v}
    if aligner != ALIGNER:
        overrides["aligner"] = aligner.to_dict()
    if overrides:
        manifest["overrides"] = overrides
    (out_dir / "bundle.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return out_dir
