"""DINOv2 position-embedding geometry: the release's transformers-4.37 formula, reproduced exactly."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from pipeline.plvm.geometry import resample_position_embeddings, use_geometry
from pipeline.plvm.reference import load_reference_encoder
from pipeline.plvm.timm_convert import dinov2_hf_to_timm


def transformers_4_37(position_embeddings: torch.Tensor, height: int, width: int, patch_size: int) -> torch.Tensor:
    """``Dinov2Embeddings.interpolate_pos_encoding`` of transformers 4.37 (the release's version),
    written out as it was there (the test's fixed reference)."""
    num_positions = position_embeddings.shape[1] - 1
    class_pos_embed = position_embeddings[:, 0]
    patch_pos_embed = position_embeddings[:, 1:]
    dim = position_embeddings.shape[-1]
    height = height // patch_size
    width = width // patch_size
    height, width = height + 0.1, width + 0.1
    patch_pos_embed = patch_pos_embed.reshape(1, int(math.sqrt(num_positions)), int(math.sqrt(num_positions)), dim)
    patch_pos_embed = patch_pos_embed.permute(0, 3, 1, 2)
    target_dtype = patch_pos_embed.dtype
    patch_pos_embed = nn.functional.interpolate(
        patch_pos_embed.to(dtype=torch.float32),
        scale_factor=(float(height / math.sqrt(num_positions)), float(width / math.sqrt(num_positions))),
        mode="bicubic",
        align_corners=False,
    ).to(dtype=target_dtype)
    assert int(height) == patch_pos_embed.shape[-2] and int(width) == patch_pos_embed.shape[-1]
    patch_pos_embed = patch_pos_embed.permute(0, 2, 3, 1).view(1, -1, dim)
    return torch.cat((class_pos_embed.unsqueeze(0), patch_pos_embed), dim=1)


def _smooth_grid(g: int, dim: int, dtype: torch.dtype) -> torch.Tensor:
    """(1, 1 + g*g, dim) position embeddings varying smoothly over the grid (plus a CLS row)."""
    y, x = torch.meshgrid(torch.linspace(0, 3, g), torch.linspace(0, 3, g), indexing="ij")
    freqs = torch.arange(1, dim + 1, dtype=torch.float32)[:, None, None] / dim
    grid = torch.sin(freqs * x + 0.5 * freqs * y).permute(1, 2, 0).reshape(1, g * g, dim)
    return torch.cat([torch.randn(1, 1, dim), grid], dim=1).to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_release_mode_is_the_4_37_formula_bit_for_bit(dtype):
    pos = _smooth_grid(37, 48, dtype)  # DINOv2-base: 37 x 37 at 518 px, a 224 px crop has 16 x 16 patches
    ours = resample_position_embeddings(pos, 16, 16, "release")
    assert ours.shape == (1, 257, 48) and ours.dtype == dtype
    assert torch.equal(ours, transformers_4_37(pos, 224, 224, 14))


def test_the_two_modes_differ_as_the_issue_measured():
    pos = _smooth_grid(37, 64, torch.float32)
    release = resample_position_embeddings(pos, 16, 16, "release")[:, 1:]
    size = resample_position_embeddings(pos, 16, 16, "size")[:, 1:]
    relative = float((release - size).norm() / size.norm())
    assert 0.005 < relative < 0.2, relative  # the grid shifts by up to 0.22 source cells
    assert torch.equal(resample_position_embeddings(pos, 37, 37, "release"), pos)  # a fitting grid is unchanged


def test_dinov2_model_uses_the_chosen_geometry(tiny_bundle, photos):
    from transformers import AutoModel

    model = AutoModel.from_pretrained(tiny_bundle / "dinov2", local_files_only=True)
    dummy = torch.zeros(1, 17, 32)
    stock = model.embeddings.interpolate_pos_encoding(dummy, 56, 56)  # transformers >= 4.45: size=
    use_geometry(model, "release")
    pos = model.embeddings.position_embeddings
    assert torch.equal(model.embeddings.interpolate_pos_encoding(dummy, 56, 56), transformers_4_37(pos, 56, 56, 14))
    assert not torch.equal(stock, transformers_4_37(pos, 56, 56, 14))

    release = load_reference_encoder(tiny_bundle / "dinov2", "transformers", geometry="release")
    size = load_reference_encoder(tiny_bundle / "dinov2", "transformers", geometry="size")
    assert (release.geometry, size.geometry) == ("release", "size")
    assert not torch.allclose(release.encode(photos[:1]), size.encode(photos[:1]), atol=1e-4)
    with pytest.raises(ValueError, match="dinov2_geometry"):
        use_geometry(model, "nearest")


def test_timm_conversion_uses_the_release_geometry(tiny_bundle):
    from transformers import AutoModel

    hf = AutoModel.from_pretrained(tiny_bundle / "dinov2", local_files_only=True)
    out = dinov2_hf_to_timm(hf.state_dict(), grid=4, geometry="release")
    assert torch.equal(out["pos_embed"], transformers_4_37(hf.embeddings.position_embeddings, 56, 56, 14))


def test_model_version_records_the_geometry(tiny_bundle):
    from dataclasses import replace

    from pipeline.plvm.engine import PlvmEngine, tiny_sources

    sources = tiny_sources(tiny_bundle)
    assert sources.geometry == "release"
    release = PlvmEngine(sources, device="cpu").model_version
    size = PlvmEngine(replace(sources, geometry="size"), device="cpu").model_version
    assert release.endswith("+pos-release") and size.endswith("+pos-size")
    assert release.removesuffix("+pos-release") == size.removesuffix("+pos-size")
