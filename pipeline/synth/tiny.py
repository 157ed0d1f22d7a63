"""A tiny RANDOM Stable Diffusion + IP-Adapter bundle, built offline, for tests.

:func:`build_tiny_synth_pipeline` writes two folders laid out exactly like the real hub repos, so
:func:`pipeline.synth.generator.load_pipeline` loads them through the same code path
(``StableDiffusionPipeline.from_pretrained(..., local_files_only=True)`` + ``load_ip_adapter``):

``ROOT/base/``        like ``stable-diffusion-v1-5/stable-diffusion-v1-5``: ``model_index.json``,
                      ``unet/`` (UNet2DConditionModel, block channels 32/64, cross-attention dim 32),
                      ``vae/`` (AutoencoderKL, 2 blocks: 2x down-sampling), ``text_encoder/``
                      (CLIPTextModel, 2 layers), ``tokenizer/`` (CLIPTokenizer: byte-level vocab,
                      no merges), ``scheduler/`` (PNDM, SD 1.5's settings), ``feature_extractor/``;
                      no safety checker.
``ROOT/ip-adapter/``  like ``h94/IP-Adapter``: ``models/image_encoder/`` (CLIPVisionModelWithProjection,
                      32 px, patch 4) and ``models/ip-adapter-plus-face_sd15.safetensors`` (or the
                      full-face variant) with the original repo's key names: ``image_proj.*`` (the
                      Resampler / the MLP projection) and ``ip_adapter.{1,3,5...}.to_{k,v}_ip.weight``
                      (one pair per UNet cross-attention layer, numbered like the original release).

Weights are random (seeded); images come out as noise. Only the formats and the code path are real.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.synth.generator import IMAGE_ENCODER_FOLDER, SynthConfig

if TYPE_CHECKING:
    from transformers import CLIPTokenizer

TINY_CROSS_ATTENTION_DIM = 32
TINY_VISION_HIDDEN = 32
TINY_IMAGE_SIZE = 32  # generated images: 32x32 by default (VAE factor 2 -> 16x16 latents)
VARIANTS = ("plus-face", "full-face")


def weight_name_for(variant: str) -> str:
    """The h94/IP-Adapter file name of an SD 1.5 face variant ("plus-face" or "full-face")."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown IP-Adapter variant {variant!r}; use one of {', '.join(VARIANTS)}")
    return f"ip-adapter-{variant}_sd15.safetensors"


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP byte -> printable unicode character table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs), strict=True))


def build_tiny_clip_tokenizer(model_max_length: int = 77) -> CLIPTokenizer:
    """A CLIPTokenizer built offline: every byte alone and as end-of-word (``x</w>``), no merges."""
    from transformers import CLIPTokenizer

    vocab: dict[str, int] = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for char in _bytes_to_unicode().values():
        vocab[char] = len(vocab)
    for char in _bytes_to_unicode().values():
        vocab[char + "</w>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=model_max_length)


def _linear(out_dim: int, in_dim: int, std: float = 0.2) -> Any:
    import torch

    return torch.randn(out_dim, in_dim) * std


def _layer_norm(prefix: str, dim: int, sd: dict[str, Any]) -> None:
    import torch

    sd[f"{prefix}.weight"] = torch.ones(dim)
    sd[f"{prefix}.bias"] = torch.zeros(dim)


def _image_proj_plus(
    embed_dims: int,
    hidden_dims: int,
    output_dims: int,
    heads: int = 1,
    num_queries: int = 4,
    depth: int = 4,
    ffn_ratio: int = 4,
) -> dict[str, Any]:
    """The IP-Adapter Plus Resampler in the original release's key names (what h94 ships)."""
    import torch

    inner = heads * 64  # diffusers infers heads as to_q rows // 64
    sd: dict[str, Any] = {
        "latents": torch.randn(1, num_queries, hidden_dims) / hidden_dims**0.5,
        "proj_in.weight": _linear(hidden_dims, embed_dims),
        "proj_in.bias": torch.zeros(hidden_dims),
        "proj_out.weight": _linear(output_dims, hidden_dims),
        "proj_out.bias": torch.zeros(output_dims),
    }
    _layer_norm("norm_out", output_dims, sd)
    for i in range(depth):
        _layer_norm(f"layers.{i}.0.norm1", hidden_dims, sd)
        _layer_norm(f"layers.{i}.0.norm2", hidden_dims, sd)
        sd[f"layers.{i}.0.to_q.weight"] = _linear(inner, hidden_dims)
        sd[f"layers.{i}.0.to_kv.weight"] = _linear(2 * inner, hidden_dims)
        sd[f"layers.{i}.0.to_out.weight"] = _linear(hidden_dims, inner)
        _layer_norm(f"layers.{i}.1.0", hidden_dims, sd)
        sd[f"layers.{i}.1.1.weight"] = _linear(hidden_dims * ffn_ratio, hidden_dims)
        sd[f"layers.{i}.1.3.weight"] = _linear(hidden_dims, hidden_dims * ffn_ratio)
    return sd


def _image_proj_full(embed_dims: int, output_dims: int) -> dict[str, Any]:
    """The IP-Adapter Full-face MLP projection (Linear, GELU, Linear, LayerNorm) in original key names."""
    import torch

    sd: dict[str, Any] = {
        "proj.0.weight": _linear(embed_dims, embed_dims),
        "proj.0.bias": torch.zeros(embed_dims),
        "proj.2.weight": _linear(output_dims, embed_dims),
        "proj.2.bias": torch.zeros(output_dims),
    }
    _layer_norm("proj.3", output_dims, sd)
    return sd


def _ip_attention(unet: Any) -> dict[str, Any]:
    """``{key_id}.to_k_ip.weight`` / ``to_v_ip`` for every cross-attention layer, numbered 1, 3, 5...

    Same order and numbering as diffusers' ``_convert_ip_adapter_attn_to_diffusers`` (the original
    release counted every attention processor; the cross-attention ones are the odd ones).
    """
    channels = list(unet.config.block_out_channels)
    cross_dim = unet.config.cross_attention_dim
    sd: dict[str, Any] = {}
    key_id = 1
    for name in unet.attn_processors:
        if name.endswith("attn1.processor"):
            continue
        if name.startswith("mid_block"):
            hidden = channels[-1]
        elif name.startswith("up_blocks"):
            hidden = list(reversed(channels))[int(name[len("up_blocks.")])]
        else:
            hidden = channels[int(name[len("down_blocks.")])]
        sd[f"{key_id}.to_k_ip.weight"] = _linear(hidden, cross_dim, std=0.5)
        sd[f"{key_id}.to_v_ip.weight"] = _linear(hidden, cross_dim, std=0.5)
        key_id += 2
    return sd


def build_tiny_synth_pipeline(out_dir: str | Path, seed: int = 0, variant: str = "plus-face") -> Path:
    """Write the tiny random SD 1.5 + IP-Adapter bundle under ``out_dir`` and return ``out_dir``.

    Entirely offline (no hub access). ``variant`` picks the IP-Adapter image projection:
    "plus-face" (Resampler, the :class:`SynthConfig` default) or "full-face" (MLP). Use
    :func:`tiny_synth_config` for a :class:`SynthConfig` pointing at the bundle.
    Takes about a second; the bundle is ~2 MB.
    """
    import torch
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from safetensors.torch import save_file
    from transformers import (
        CLIPImageProcessor,
        CLIPTextConfig,
        CLIPTextModel,
        CLIPVisionConfig,
        CLIPVisionModelWithProjection,
    )

    weight_name = weight_name_for(variant)
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)

    unet = UNet2DConditionModel(
        sample_size=TINY_IMAGE_SIZE // 2,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=TINY_CROSS_ATTENTION_DIM,
        attention_head_dim=8,
        norm_num_groups=16,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        block_out_channels=(16, 32),
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=16,
        sample_size=TINY_IMAGE_SIZE,
    )
    tokenizer = build_tiny_clip_tokenizer()
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=TINY_CROSS_ATTENTION_DIM,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=77,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    scheduler = PNDMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        skip_prk_steps=True,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    vision_size = 32
    feature_extractor = CLIPImageProcessor(
        size={"shortest_edge": vision_size}, crop_size={"height": vision_size, "width": vision_size}
    )
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=feature_extractor,
        image_encoder=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(  # type: ignore[attr-defined]  # mypy resolves diffusers' lazy export to its dummy class
        root / "base",
        safe_serialization=True,
    )

    image_encoder = CLIPVisionModelWithProjection(
        CLIPVisionConfig(
            hidden_size=TINY_VISION_HIDDEN,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            image_size=vision_size,
            patch_size=4,
            projection_dim=TINY_VISION_HIDDEN,
        )
    )
    models = root / "ip-adapter" / "models"
    image_encoder.save_pretrained(models / IMAGE_ENCODER_FOLDER, safe_serialization=True)
    # Full-face and plus-face both read the encoder's penultimate hidden states (dim = hidden_size).
    if variant == "plus-face":
        image_proj = _image_proj_plus(TINY_VISION_HIDDEN, hidden_dims=32, output_dims=TINY_CROSS_ATTENTION_DIM)
    else:
        image_proj = _image_proj_full(TINY_VISION_HIDDEN, TINY_CROSS_ATTENTION_DIM)
    flat = {f"image_proj.{k}": v.contiguous() for k, v in image_proj.items()}
    flat.update({f"ip_adapter.{k}": v.contiguous() for k, v in _ip_attention(unet).items()})
    save_file(flat, str(models / weight_name))
    (root / "README.txt").write_text(
        "Tiny RANDOM Stable Diffusion + IP-Adapter bundle for tests (pipeline.synth.tiny); images are noise.\n"
        + json.dumps({"variant": variant, "seed": seed, "weight_name": weight_name})
        + "\n",
        encoding="utf-8",
    )
    return root


def tiny_synth_config(root: str | Path, variant: str = "plus-face", **overrides: Any) -> SynthConfig:
    """A :class:`SynthConfig` for a bundle written by :func:`build_tiny_synth_pipeline`.

    Defaults: 32x32 px, 2 steps, 2 images per identity, CPU float32, no safety checker; any
    SynthConfig field can be overridden.
    """
    root = Path(root)
    config = SynthConfig(
        base_model=str(root / "base"),
        ip_adapter_repo=str(root / "ip-adapter"),
        ip_adapter_subfolder="models",
        ip_adapter_weight_name=weight_name_for(variant),
        size=TINY_IMAGE_SIZE,
        steps=2,
        images_per_identity=2,
        device="cpu",
        dtype="float32",
        safety_checker=False,
    )
    return replace(config, **overrides)
