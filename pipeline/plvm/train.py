"""Aligner training -- the part of PLVM the authors did not release. See docs/plvm.md, "Training".

    from pipeline.plvm.train import TrainConfig, train_aligner
    config = TrainConfig(data_dir=Path("ids"), out=Path("aligner.ckpt"), steps=2000)
    result = train_aligner(config, settings, evaluator=partial(evaluate_recognition, settings))

Only the Aligner trains; the reference encoder (DINOv2) and the LVLM (LLaVA) are frozen. The
checkpoint is the released format (``pipeline models verify-aligner`` and the plvm profile load
it unchanged); ``<out>.train-state.pt`` next to it lets ``resume`` continue exactly. The pieces
live in :mod:`pipeline.plvm.training`.
"""

from __future__ import annotations

from pipeline.plvm.training.config import EvalPoint, TrainConfig, TrainResult
from pipeline.plvm.training.loop import FrozenModels, build_aligner, load_frozen_models, train_aligner

__all__ = [
    "EvalPoint",
    "FrozenModels",
    "TrainConfig",
    "TrainResult",
    "build_aligner",
    "load_frozen_models",
    "train_aligner",
]
