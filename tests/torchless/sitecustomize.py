"""Makes PyTorch and the libraries built on it unimportable, as on a faces-only install.

Put this folder first on ``PYTHONPATH`` of a subprocess (``tests.conftest.WITHOUT_TORCH``): Python
imports ``sitecustomize`` at start-up, and the finder below answers every ``import torch`` (or
transformers, ...) with the ``ModuleNotFoundError`` a missing package gives.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

BLOCKED = frozenset({"torch", "torchvision", "transformers", "accelerate", "safetensors", "diffusers", "timm"})


class _NotInstalled:
    """A meta path finder that refuses the blocked top-level packages."""

    def find_spec(
        self, name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _NotInstalled())
