"""Data-dependent initialisation of a new Aligner (the layout stays the released one; only weights
and biases are rescaled). Two steps, both measured to speed up learning on the CPU demo:

1. :func:`standardize_inputs`. Frozen reference features are dominated by what all references share: for the tiny random
DINOv2, 67% of z_ref's variance (97% for the CLS token) is common to every person, so a randomly
initialised Aligner gives almost the same tokens for everyone and the first hundreds of steps
only learn a bias. Folding a per-channel standardisation of the training references into the
Aligner's two input layers (``proj_in`` on every token, ``linear_weight_mapping.0`` on the CLS
token) makes its outputs depend on the person from step 0.

2. :func:`match_output_scale`. A LayerNorm output has unit spread per entry, far above word
embeddings (std 0.07 in the demo, ~0.02 in LLaMA); such concept tokens dominate the LVLM's
residual stream at their positions and drown what those positions read from the photo. Starting
them at the embedding table's spread (and lm_weight at the LM head's) fixes that. ``token_scale``
starts them at a multiple of it. After the LVLM's first layer a position's residual stream is
mostly what its attention gathered (in the demo's random LLaMA, ~20x an embedding), so tokens a
few times larger than word embeddings still leave room for the photo and weigh more in the later
layers: on the CPU demo's short run, 4 learned faster than 1, 8 and 12. The default stays 1.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from pipeline.plvm.aligner import Aligner

if TYPE_CHECKING:
    from pipeline.plvm.lvlm import Lvlm


def initialise_from_data(aligner: Aligner, z_ref: torch.Tensor, lvlm: Lvlm, token_scale: float = 1.0) -> None:
    """Both steps for a new ``aligner`` (CPU, float32): ``z_ref`` (N, T, width) of the training
    references, the frozen ``lvlm`` gives the scales (its own vocabulary rows only); tokens start
    at ``token_scale`` x the embedding spread."""
    vocab = lvlm.bank.base_vocab
    standardize_inputs(aligner, z_ref)
    match_output_scale(
        aligner,
        lvlm.model.get_input_embeddings().weight[:vocab],
        lvlm.model.get_output_embeddings().weight[:vocab],
        z_ref,
        token_scale,
    )


@torch.no_grad()
def standardize_inputs(aligner: Aligner, z_ref: torch.Tensor, eps: float = 1e-6) -> None:
    """Rescale ``aligner``'s input layers in place so that they see (z - mean) / std per channel.

    z_ref: (N, T, width) reference features of the training identities (any device; float).
    For a Linear y = W x + b this sets W' = W / std (per input channel), b' = b - W' mean.
    """
    if z_ref.ndim != 3 or z_ref.shape[-1] != aligner.config.width:
        raise ValueError(f"z_ref must be (N, T, {aligner.config.width}); got {tuple(z_ref.shape)}")
    z = z_ref.float()
    first = aligner.linear_weight_mapping[0]
    assert isinstance(first, torch.nn.Linear)  # the Aligner's CLS MLP starts with a Linear
    pairs = ((aligner.proj_in, z.reshape(-1, z.shape[-1])), (first, z[:, 0]))
    for layer, x in pairs:
        mean, std = x.mean(0), x.std(0).clamp_min(eps)  # (width,)
        weight = layer.weight / std.to(layer.weight)  # (out, width)
        layer.bias.sub_(weight @ mean.to(weight))
        layer.weight.copy_(weight)


@torch.no_grad()
def match_output_scale(
    aligner: Aligner, embedding: torch.Tensor, head: torch.Tensor, z_ref: torch.Tensor, token_scale: float = 1.0
) -> None:
    """Rescale ``aligner``'s outputs in place to the LVLM's own scale: token entries with
    ``token_scale`` x the spread of its input-embedding rows (``norm_out`` gain, LayerNorm output
    has unit spread), and lm_weight with the spread of its LM-head rows (last layer of
    ``linear_weight_mapping``).

    Tokens 10x larger than word embeddings would drown whatever the concept positions gather
    from the photo in the LVLM's residual stream. embedding/head: (V, D) weights; z_ref as above.
    """
    aligner.norm_out.weight.fill_(token_scale * float(embedding.float().std()))
    aligner.norm_out.bias.zero_()
    last = aligner.linear_weight_mapping[-1]
    assert isinstance(last, torch.nn.Linear)  # the Aligner's CLS MLP ends with a Linear
    current = aligner(z_ref.float().to(last.weight.device))[1].std()
    scale = float(head.float().std()) / max(float(current), 1e-8)
    last.weight.mul_(scale)
    last.bias.mul_(scale)
