"""Synthetic identity data for training a trainable profile: new images of each face in varied scenes.

``pipeline synth --faces DIR --out DIR`` calls :func:`synthesize`; see
:mod:`pipeline.synth.generator` for the output format, models and determinism, and
:mod:`pipeline.synth.prompts` for the scene prompts. Importing this package does not import
torch or diffusers (they load on first use).
"""

from typing import Any

from pipeline.synth.generator import (
    DEFAULT_BASE_MODEL,
    DEFAULT_IP_ADAPTER_REPO,
    DEFAULT_IP_ADAPTER_SUBFOLDER,
    DEFAULT_IP_ADAPTER_WEIGHT,
    MANIFEST_NAME,
    FaceSource,
    SynthConfig,
    SynthReport,
    check_models,
    discover_faces,
    download_instructions,
    image_seed,
    load_pipeline,
    prompt_for,
    synthesize,
)
from pipeline.synth.prompts import DEFAULT_NEGATIVE_PROMPT, DEFAULT_PROMPTS, load_prompts

__all__ = [
    "DEFAULT_BASE_MODEL",
    "DEFAULT_IP_ADAPTER_REPO",
    "DEFAULT_IP_ADAPTER_SUBFOLDER",
    "DEFAULT_IP_ADAPTER_WEIGHT",
    "DEFAULT_NEGATIVE_PROMPT",
    "DEFAULT_PROMPTS",
    "MANIFEST_NAME",
    "FaceSource",
    "SynthConfig",
    "SynthReport",
    "build_tiny_synth_pipeline",
    "check_models",
    "discover_faces",
    "download_instructions",
    "image_seed",
    "load_pipeline",
    "load_prompts",
    "prompt_for",
    "synthesize",
    "tiny_synth_config",
]


def __getattr__(name: str) -> Any:
    """Lazy access to the tiny test bundle builders (they import diffusers/transformers)."""
    if name in ("build_tiny_synth_pipeline", "tiny_synth_config"):
        from pipeline.synth import tiny

        return getattr(tiny, name)
    raise AttributeError(f"module 'pipeline.synth' has no attribute {name!r}")
