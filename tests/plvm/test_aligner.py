"""Aligner structure and numerics against an independent einsum re-implementation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pipeline.plvm.aligner import Aligner, AlignerConfig, count_parameters


def test_default_config_has_released_parameter_count():
    assert count_parameters(Aligner(AlignerConfig())) == 41_272_832


def reference_forward(sd: dict[str, torch.Tensor], cfg: AlignerConfig, z: torch.Tensor):
    """Straightforward PLVM Aligner from docs/plvm.md, written with einsum and 1/sqrt(d) scaling."""

    def ln(x, prefix):
        return F.layer_norm(x, (x.shape[-1],), sd[prefix + ".weight"], sd[prefix + ".bias"], eps=1e-5)

    b, h, d = z.shape[0], cfg.heads, cfg.head_dim
    inner = h * d
    lat = sd["latents"].expand(b, -1, -1)
    x = torch.einsum("btc,oc->bto", z, sd["proj_in.weight"]) + sd["proj_in.bias"]
    for i in range(cfg.depth):
        p = f"layers.{i}.0."
        xn, ln_lat = ln(x, p + "norm1"), ln(lat, p + "norm2")
        q = torch.einsum("blc,oc->blo", ln_lat, sd[p + "to_q.weight"])
        kv = torch.einsum("bsc,oc->bso", torch.cat([xn, ln_lat], dim=1), sd[p + "to_kv.weight"])
        k, v = kv[..., :inner], kv[..., inner:]
        q, k, v = (t.reshape(b, t.shape[1], h, d) for t in (q, k, v))
        scores = torch.einsum("blhd,bshd->bhls", q, k) / d**0.5
        attn = scores.float().softmax(-1).to(scores.dtype)  # plvm.md: softmax in float32
        o = torch.einsum("bhls,bshd->blhd", attn, v).reshape(b, -1, inner)
        lat = lat + torch.einsum("blo,co->blc", o, sd[p + "to_out.weight"])
        f = F.gelu(torch.einsum("blc,oc->blo", ln(lat, f"layers.{i}.1.0"), sd[f"layers.{i}.1.1.weight"]))
        lat = lat + torch.einsum("blo,co->blc", f, sd[f"layers.{i}.1.3.weight"])
    tokens = ln(torch.einsum("blc,oc->blo", lat, sd["proj_out.weight"]) + sd["proj_out.bias"], "norm_out")
    m = z[:, 0]
    for j in (0, 2, 4):
        m = m @ sd[f"linear_weight_mapping.{j}.weight"].T + sd[f"linear_weight_mapping.{j}.bias"]
        m = F.gelu(m) if j < 4 else m
    return tokens, m


@pytest.mark.parametrize(
    "cfg",
    [
        AlignerConfig(width=32, depth=2, heads=4, head_dim=8, n_queries=5, out_dim=24, ff_mult=2, weight_head_width=16),
        AlignerConfig(
            width=48, depth=1, heads=2, head_dim=32, n_queries=17, out_dim=40, ff_mult=4, weight_head_width=20
        ),
    ],
)
def test_forward_matches_einsum_reimplementation(cfg):
    torch.manual_seed(0)
    aligner = Aligner(cfg).double()
    with torch.no_grad():  # randomise every parameter (LayerNorm affine included)
        for param in aligner.parameters():
            param.copy_(torch.randn_like(param) * 0.3)
    z = torch.randn(3, 11, cfg.width, dtype=torch.float64)
    tokens, lm_weight = aligner(z)
    assert tokens.shape == (3, cfg.n_queries, cfg.out_dim) and lm_weight.shape == (3, cfg.out_dim)
    ref_tokens, ref_lm = reference_forward(aligner.state_dict(), cfg, z)
    torch.testing.assert_close(tokens, ref_tokens, atol=1e-9, rtol=1e-7)
    torch.testing.assert_close(lm_weight, ref_lm, atol=1e-9, rtol=1e-7)


def test_softmax_runs_in_float32_for_half_inputs():
    cfg = AlignerConfig(
        width=32, depth=1, heads=2, head_dim=16, n_queries=3, out_dim=16, ff_mult=2, weight_head_width=16
    )
    torch.manual_seed(1)
    aligner = Aligner(cfg)
    z = torch.randn(2, 7, 32)
    full, _ = aligner(z)
    half, _ = aligner.to(torch.bfloat16)(z.to(torch.bfloat16))
    assert half.dtype == torch.bfloat16
    torch.testing.assert_close(half.float(), full, atol=0.1, rtol=0.05)


def test_wrong_input_width_is_a_clear_error():
    aligner = Aligner(AlignerConfig(width=32, depth=1, heads=2, head_dim=16, n_queries=3, out_dim=16))
    with pytest.raises(ValueError, match=r"\(B, T, 32\); got \(1, 5, 31\)"):
        aligner(torch.randn(1, 5, 31))
