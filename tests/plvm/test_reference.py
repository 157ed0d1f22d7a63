"""Reference encoder backends: transformers (tiny DINOv2) and the timm conversion."""

from __future__ import annotations

import pytest
import torch

from pipeline.plvm.reference import load_reference_encoder
from pipeline.plvm.timm_convert import dinov2_hf_to_timm


def test_transformers_backend_gives_cls_plus_patches(tiny_bundle, photos):
    encoder = load_reference_encoder(tiny_bundle / "dinov2", "transformers")
    z_ref = encoder.encode(photos[:2])
    # crop 56 / patch 14 -> 4 x 4 patches + CLS; width 32
    assert z_ref.shape == (2, 17, 32) and z_ref.dtype == torch.float32
    again = encoder.encode(photos[1:2])
    torch.testing.assert_close(again[0], z_ref[1], atol=1e-5, rtol=1e-5)


def test_hf_to_timm_conversion_layout(tiny_bundle):
    from transformers import AutoModel

    hf = AutoModel.from_pretrained(tiny_bundle / "dinov2", local_files_only=True)
    sd = hf.state_dict()
    out = dinov2_hf_to_timm(sd, grid=4, geometry="size")
    block_keys = {
        "norm1.weight",
        "norm1.bias",
        "attn.qkv.weight",
        "attn.qkv.bias",
        "attn.proj.weight",
        "attn.proj.bias",
        "ls1.gamma",
        "norm2.weight",
        "norm2.bias",
        "mlp.fc1.weight",
        "mlp.fc1.bias",
        "mlp.fc2.weight",
        "mlp.fc2.bias",
        "ls2.gamma",
    }
    expected = {
        "cls_token",
        "pos_embed",
        "patch_embed.proj.weight",
        "patch_embed.proj.bias",
        "norm.weight",
        "norm.bias",
    }
    expected |= {f"blocks.{i}.{k}" for i in range(2) for k in block_keys}
    assert set(out) == expected
    att = "encoder.layer.1.attention."
    qkv = torch.cat([sd[att + "q_proj.weight"], sd[att + "k_proj.weight"], sd[att + "v_proj.weight"]])
    assert torch.equal(out["blocks.1.attn.qkv.weight"], qkv)
    # the position grid (5x5 in the config) is resampled exactly as transformers >= 4.45 does at 56 px
    dummy = torch.zeros(1, 17, 32)
    expected_pos = hf.embeddings.interpolate_pos_encoding(dummy, 56, 56)
    torch.testing.assert_close(out["pos_embed"], expected_pos, rtol=0, atol=0)


@pytest.mark.parametrize("geometry", ["release", "size"])
def test_timm_backbone_matches_transformers(tiny_bundle, photos, geometry):
    pytest.importorskip("timm")
    hf = load_reference_encoder(tiny_bundle / "dinov2", "transformers", geometry=geometry)
    timm_encoder = load_reference_encoder(tiny_bundle / "dinov2", "timm", geometry=geometry)
    assert timm_encoder.transform == hf.transform
    torch.testing.assert_close(timm_encoder.encode(photos), hf.encode(photos), atol=1e-5, rtol=1e-4)


def test_timm_backend_without_timm_is_a_clear_error(tiny_bundle, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_timm(name, *args, **kwargs):
        if name == "timm":
            raise ImportError("No module named 'timm'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_timm)
    with pytest.raises(ImportError, match="reference_backend 'transformers'"):
        load_reference_encoder(tiny_bundle / "dinov2", "timm")
