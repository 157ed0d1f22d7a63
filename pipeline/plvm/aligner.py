"""The PLVM Aligner: DINOv2 reference features -> concept token embeddings + one LM-head row.

Module names and parameter shapes follow the released checkpoint key for key (docs/plvm.md):
a Perceiver-style resampler (``latents``, ``proj_in``, ``layers``, ``proj_out``, ``norm_out``)
whose 17 queries become the concept token (query 0) and 16 soft tokens, and an MLP on the CLS
token (``linear_weight_mapping``) that gives the concept token's LM-head row.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class AlignerConfig:
    """Sizes of the Aligner; the defaults are the released checkpoint (41,272,832 parameters).

    width: reference-feature width (DINOv2 hidden size) and the resampler's internal width.
    depth: number of (attention, feed-forward) blocks.
    heads, head_dim: attention heads and their size (heads * head_dim = q width).
    n_queries: learned queries = output tokens (1 concept token + n_queries - 1 soft tokens).
    out_dim: output token width = the LVLM's hidden size (and LM-head row width).
    ff_mult: feed-forward expansion factor.
    weight_head_width: hidden width of the LM-head-row MLP.
    """

    width: int = 768
    depth: int = 4
    heads: int = 16
    head_dim: int = 64
    n_queries: int = 17
    out_dim: int = 4096
    ff_mult: int = 4
    weight_head_width: int = 1024

    @property
    def n_soft(self) -> int:
        """Soft tokens per concept (all queries but the first)."""
        return self.n_queries - 1

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, int]) -> AlignerConfig:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown AlignerConfig fields {unknown}; expected a subset of {sorted(known)}")
        return cls(**{k: int(v) for k, v in data.items()})


class PerceiverAttention(nn.Module):
    """Latents attend to (image tokens ++ latents); q and k each scaled by head_dim**-0.25."""

    def __init__(self, width: int, heads: int, head_dim: int) -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = head_dim
        inner = heads * head_dim
        self.norm1 = nn.LayerNorm(width)
        self.norm2 = nn.LayerNorm(width)
        self.to_q = nn.Linear(width, inner, bias=False)
        self.to_kv = nn.Linear(width, 2 * inner, bias=False)
        self.to_out = nn.Linear(inner, width, bias=False)

    def forward(self, x: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        """x: (B, T, width) image tokens; latents: (B, L, width). Returns (B, L, width)."""
        x = self.norm1(x)
        latents = self.norm2(latents)
        b, n_latents, _ = latents.shape
        h, d = self.heads, self.head_dim

        q = self.to_q(latents)  # (B, L, H*d)
        kv_input = torch.cat((x, latents), dim=-2)  # (B, T+L, width)
        k, v = self.to_kv(kv_input).chunk(2, dim=-1)  # 2 x (B, T+L, H*d)

        q = q.view(b, n_latents, h, d).transpose(1, 2)  # (B, H, L, d)
        k = k.view(b, k.shape[1], h, d).transpose(1, 2)  # (B, H, T+L, d)
        v = v.view(b, v.shape[1], h, d).transpose(1, 2)  # (B, H, T+L, d)

        scale = d**-0.25
        weight = (q * scale) @ (k * scale).transpose(-2, -1)  # (B, H, L, T+L)
        weight = torch.softmax(weight.float(), dim=-1).to(weight.dtype)
        out = weight @ v  # (B, H, L, d)
        out = out.transpose(1, 2).reshape(b, n_latents, h * d)  # (B, L, H*d)
        return self.to_out(out)


def feed_forward(width: int, mult: int) -> nn.Sequential:
    """LayerNorm, Linear (no bias), GELU, Linear (no bias): state-dict indices 0, 1, 3."""
    return nn.Sequential(
        nn.LayerNorm(width),
        nn.Linear(width, width * mult, bias=False),
        nn.GELU(),
        nn.Linear(width * mult, width, bias=False),
    )


class Aligner(nn.Module):
    """Maps z_ref (B, T, width) to concept tokens (B, n_queries, out_dim) and an LM-head row (B, out_dim)."""

    def __init__(self, config: AlignerConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or AlignerConfig()
        w = config.width
        self.latents = nn.Parameter(torch.randn(1, config.n_queries, w) / w**0.5)
        self.proj_in = nn.Linear(w, w)
        self.layers = nn.ModuleList(
            nn.ModuleList([PerceiverAttention(w, config.heads, config.head_dim), feed_forward(w, config.ff_mult)])
            for _ in range(config.depth)
        )
        self.proj_out = nn.Linear(w, config.out_dim)
        self.norm_out = nn.LayerNorm(config.out_dim)
        self.linear_weight_mapping = nn.Sequential(
            nn.Linear(w, config.weight_head_width),
            nn.GELU(),
            nn.Linear(config.weight_head_width, config.weight_head_width),
            nn.GELU(),
            nn.Linear(config.weight_head_width, config.out_dim),
        )

    def forward(self, z_ref: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z_ref: (B, T, width) DINOv2 last_hidden_state, CLS first.

        Returns tokens (B, n_queries, out_dim) -- tokens[:, 0] is the concept token's input embedding,
        tokens[:, 1:] the soft tokens -- and lm_weight (B, out_dim), the concept token's LM-head row.
        """
        if z_ref.ndim != 3 or z_ref.shape[-1] != self.config.width:
            raise ValueError(f"Aligner expects z_ref of shape (B, T, {self.config.width}); got {tuple(z_ref.shape)}")
        lm_weight = self.linear_weight_mapping(z_ref[:, 0])  # (B, out_dim), from the raw CLS token
        latents = self.latents.repeat(z_ref.shape[0], 1, 1)  # (B, L, width)
        x = self.proj_in(z_ref)  # (B, T, width)
        for block in self.layers:
            assert isinstance(block, nn.ModuleList)  # each layer is built as ModuleList([attention, feed-forward])
            attn, ff = block
            latents = attn(x, latents) + latents
            latents = ff(latents) + latents
        tokens = self.norm_out(self.proj_out(latents))  # (B, L, out_dim)
        return tokens, lm_weight


def count_parameters(module: nn.Module) -> int:
    """Number of scalar parameters."""
    return sum(p.numel() for p in module.parameters())
