"""Shared fixtures for the PLVM model-layer tests: engines on the session's tiny random bundle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


@pytest.fixture
def fresh_engine(tiny_bundle: Path):
    """A new engine on the tiny bundle (nothing loaded yet)."""
    from pipeline.plvm.engine import PlvmEngine, tiny_sources

    return PlvmEngine(tiny_sources(tiny_bundle), device="cpu", dtype="float32", max_new_tokens=6)


@pytest.fixture(scope="session")
def engine(tiny_bundle: Path):
    """A session-wide engine on the tiny bundle (models load once, on first use)."""
    from pipeline.plvm.engine import PlvmEngine, tiny_sources

    return PlvmEngine(tiny_sources(tiny_bundle), device="cpu", dtype="float32", max_new_tokens=6)


@pytest.fixture(scope="session")
def photos() -> list[Image.Image]:
    """Four deterministic random RGB photos of different sizes."""
    rng = np.random.default_rng(0)
    sizes = [(80, 60), (64, 64), (50, 90), (120, 70)]
    return [Image.fromarray((rng.random((h, w, 3)) * 255).astype("uint8")) for w, h in sizes]


@pytest.fixture(scope="session")
def people(engine, photos):
    """Susan, Mike, Anna enrolled from the tiny bundle's reference encoder + Aligner."""
    from pipeline.plvm.embeddings import Person

    return [
        Person(name, engine.encode_references([photo]))
        for name, photo in zip(["Susan", "Mike", "Anna"], photos[:3], strict=True)
    ]
