"""Generation settings: greedy by default (the same rows every run), sampling when asked."""

from __future__ import annotations

import torch

from pipeline.plvm.lvlm import LvlmRequest


def test_defaults_are_greedy_with_40_tokens():
    from pipeline.config import Settings

    settings = Settings()
    assert settings.temperature == 0.0 and settings.max_new_tokens == 40


def test_greedy_repeats_and_temperature_samples(engine, people, photos):
    lvlm = engine.load_lvlm()
    requests = [LvlmRequest(photos[0], "Who is <sks>?", people[:1])]
    greedy = [lvlm.generate_tokens(requests, max_new_tokens=8)[0].ids for _ in range(2)]
    assert greedy[0] == greedy[1]
    sampled = set()
    for seed in range(6):
        torch.manual_seed(seed)
        sampled.add(tuple(lvlm.generate_tokens(requests, max_new_tokens=8, temperature=50.0)[0].ids))
    assert len(sampled) > 1  # a near-flat distribution over the tiny vocabulary: the draws differ


def test_engine_passes_its_settings(tiny_bundle, photos, people):
    from pipeline.config import Settings
    from pipeline.plvm.engine import PlvmEngine

    settings = Settings(profile="tiny", tiny_bundle=tiny_bundle, device="cpu", temperature=0.7, max_new_tokens=3)
    engine = PlvmEngine.from_settings(settings)
    assert (engine.temperature, engine.max_new_tokens) == (0.7, 3)
    assert engine.sources.geometry == "release"
    size = PlvmEngine.from_settings(Settings(profile="tiny", tiny_bundle=tiny_bundle, dinov2_geometry="size"))
    assert size.sources.geometry == "size" and size.model_version.endswith("+pos-size")
