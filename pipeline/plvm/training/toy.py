"""The CPU training demo's frozen models: a tiny RANDOM bundle sized so that an Aligner can steer it.

The default tiny bundle (LLaMA hidden 64, GPT-style init std 0.02, 28 px CLIP) is built to test
plumbing: its attention is almost uniform (logits ~0.1), so no input embedding can make the
yes/no answer depend on WHICH person is in the photo -- an Aligner trained on it stays at chance
(measured: 0.50 after 1,500 steps). The demo keeps every model random and frozen but picks
sizes a random network can be prompted through (all plain config fields, see
:func:`pipeline.plvm.tiny.write_tiny_bundle`):

- LLaMA: hidden 256, 2 layers, 8 heads of 64 (attention width 512), MLP 512, init std 0.07
  (~ 1/sqrt(hidden), so attention logits are O(1-10) and content-selective), RoPE base 1e8
  (relative position barely rotates queries/keys, so matching a colour does not depend on where
  the person stands);
- CLIP: 56 px input, 7 px patches -> 64 image tokens (a 28 px view loses most identity traits).

DINOv2 keeps the tiny bundle's sizes (hidden 32, 4 x 4 patches at 56 px).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

TOY_TEXT: dict[str, Any] = dict(
    hidden_size=256,
    intermediate_size=512,
    num_hidden_layers=2,
    num_attention_heads=8,
    num_key_value_heads=8,
    head_dim=64,
    initializer_range=0.07,
    rope_theta=1e8,
)
TOY_VISION: dict[str, Any] = dict(image_size=56, patch_size=7)
#: Keyword arguments of write_tiny_bundle for the demo's frozen models.
TOY_BUNDLE: dict[str, Any] = dict(text=TOY_TEXT, vision=TOY_VISION)
#: Aligner sizes for the demo (width 32 and out_dim 256 come from the frozen models).
TOY_ALIGNER: dict[str, int] = dict(depth=2, heads=4, head_dim=16, ff_mult=2, weight_head_width=64)


def write_toy_bundle(out_dir: Path, seed: int = 0) -> Path:
    """Write the demo bundle (random weights; a few MB, about a second). Returns ``out_dir``."""
    from pipeline.plvm.tiny import write_tiny_bundle

    return write_tiny_bundle(out_dir, seed=seed, **TOY_BUNDLE)
