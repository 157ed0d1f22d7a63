"""Convert a transformers ``Dinov2Model`` state dict to timm ``VisionTransformer`` key names.

The position embedding is resampled here to the timm model's fixed grid exactly the way
transformers resamples it at run time, in the chosen geometry (:mod:`pipeline.plvm.geometry`: the
release's scale-factor formula or the exact size), so the two backends give the same z_ref.
(timm's own ``resample_abs_pos_embed`` antialiases, which would differ when shrinking DINOv2's
37x37 grid to 16x16.)
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

from pipeline.plvm.geometry import Geometry, resample_position_embeddings

# transformers v5 names first, then v4 names (hub checkpoints) -> timm names
_LAYER_RENAMES: tuple[tuple[str, str], ...] = (
    ("norm1.", "norm1."),
    ("norm2.", "norm2."),
    ("attention.o_proj.", "attn.proj."),
    ("attention.output.dense.", "attn.proj."),
    ("layer_scale1.lambda1", "ls1.gamma"),
    ("layer_scale2.lambda1", "ls2.gamma"),
    ("mlp.fc1.", "mlp.fc1."),
    ("mlp.fc2.", "mlp.fc2."),
)
_QKV_NAMES: tuple[tuple[str, str, str], ...] = (
    ("attention.q_proj", "attention.k_proj", "attention.v_proj"),
    ("attention.attention.query", "attention.attention.key", "attention.attention.value"),
)


def dinov2_hf_to_timm(
    state_dict: Mapping[str, torch.Tensor], grid: int, geometry: Geometry = "release"
) -> dict[str, torch.Tensor]:
    """Rename/fuse a Dinov2Model state dict for timm's ``vit_*_patch14_dinov2`` at ``grid`` x ``grid`` patches,
    position embeddings resampled in ``geometry``.

    Fuses q/k/v into ``attn.qkv`` (rows q, k, v), drops ``mask_token``. SwiGLU (giant) is not supported.
    """
    src = {k.removeprefix("dinov2."): v for k, v in state_dict.items()}
    if any(".weights_in." in k for k in src):
        raise NotImplementedError("SwiGLU DINOv2 (giant) has no timm conversion here")
    out: dict[str, torch.Tensor] = {
        "cls_token": src["embeddings.cls_token"],
        "pos_embed": resample_position_embeddings(src["embeddings.position_embeddings"], grid, grid, geometry),
        "patch_embed.proj.weight": src["embeddings.patch_embeddings.projection.weight"],
        "patch_embed.proj.bias": src["embeddings.patch_embeddings.projection.bias"],
        "norm.weight": src["layernorm.weight"],
        "norm.bias": src["layernorm.bias"],
    }
    layer_ids = sorted({int(m.group(1)) for k in src if (m := re.match(r"encoder\.layer\.(\d+)\.", k))})
    for i in layer_ids:
        prefix, dst = f"encoder.layer.{i}.", f"blocks.{i}."
        for q, k, v in _QKV_NAMES:
            if prefix + q + ".weight" in src:
                for part in ("weight", "bias"):
                    out[f"{dst}attn.qkv.{part}"] = torch.cat(
                        [src[f"{prefix}{name}.{part}"] for name in (q, k, v)], dim=0
                    )  # (3*D, D) or (3*D,)
                break
        else:
            raise KeyError(f"no q/k/v projections found for {prefix}")
        for key, value in src.items():
            if not key.startswith(prefix):
                continue
            rest = key[len(prefix) :]
            for old, new in _LAYER_RENAMES:
                if rest.startswith(old):
                    out[dst + new + rest[len(old) :]] = value
                    break
    return out
