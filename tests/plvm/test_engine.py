"""PlvmEngine: lazy loading boundaries, storage format, missing weights, settings, batch APIs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.plvm.aligner import Aligner
from pipeline.plvm.checkpoint import file_sha256
from pipeline.plvm.embeddings import ConceptEmbedding, Description
from pipeline.plvm.engine import PlvmEngine, PlvmSources, tiny_sources
from pipeline.plvm.errors import MissingWeightsError, ModelDownloadError, PlvmError


def test_encode_references_does_not_load_llava(fresh_engine, photos, monkeypatch):
    from pipeline.plvm import lvlm

    def forbidden(*args, **kwargs):
        raise AssertionError("LLaVA must not load during enrolment")

    monkeypatch.setattr(lvlm.Lvlm, "load", classmethod(forbidden))
    concept = fresh_engine.encode_references(photos[:3])
    assert fresh_engine.reference_loaded and not fresh_engine.lvlm_loaded
    assert concept.tokens.shape == (17, 64) and concept.lm_weight.shape == (64,)
    # mean over images of the per-image Aligner outputs
    singles = [fresh_engine.encode_references([p]) for p in photos[:3]]
    torch.testing.assert_close(concept.tokens, torch.stack([c.tokens for c in singles]).mean(0), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(
        concept.lm_weight, torch.stack([c.lm_weight for c in singles]).mean(0), atol=1e-5, rtol=1e-5
    )


def test_describe_and_scores_do_not_call_the_aligner(fresh_engine, people, photos, monkeypatch):
    calls = []
    original = Aligner.forward

    def counting(self, z_ref):
        calls.append(z_ref.shape)
        return original(self, z_ref)

    monkeypatch.setattr(Aligner, "forward", counting)
    fresh_engine.encode_references(photos[:1])
    assert len(calls) == 1  # the counter sees Aligner calls
    out = fresh_engine.describe(photos[:2], [people[:2], []], ["Who is in this photo?", "Where is Susan?"])
    fresh_engine.recognition_scores(photos[0], people)
    fresh_engine.ask(photos[1], "What is Mike doing?", people[1:2])
    fresh_engine.option_loglik(None, "Who is <sks>?", ["A", "B"], people[:1])
    assert len(calls) == 1
    assert [type(d) for d in out] == [Description, Description]
    assert list(out[0].answers) == ["Who is in this photo?", "Where is Susan?"]
    assert all(isinstance(a, str) for d in out for a in [d.caption, *d.answers.values()])


def test_llava_calls_do_not_load_the_reference_side(fresh_engine, people, photos):
    fresh_engine.recognition_scores(photos[0], people[:1])
    assert fresh_engine.lvlm_loaded and not fresh_engine.reference_loaded


def test_recognition_batch_matches_per_photo(engine, people, photos):
    batch = engine.recognition_scores_batch(photos[:3], people)
    assert batch.shape == (3, 3) and ((batch > 0) & (batch < 1)).all()
    per_photo = np.array([engine.recognition_scores(p, people) for p in photos[:3]])
    np.testing.assert_allclose(batch, per_photo, atol=1e-4, rtol=0)
    assert engine.recognition_scores_batch(photos[:2], []).shape == (2, 0)


def test_concept_bytes_round_trip():
    torch.manual_seed(0)
    concept = ConceptEmbedding(torch.randn(17, 64), torch.randn(64))
    tokens, lm_weight = concept.to_bytes()
    assert len(tokens) == 2 * 17 * 64 and len(lm_weight) == 2 * 64
    back = ConceptEmbedding.from_bytes(tokens, lm_weight, 17, 64)
    torch.testing.assert_close(back.tokens, concept.tokens.half().float(), rtol=0, atol=0)
    torch.testing.assert_close(back.lm_weight, concept.lm_weight.half().float(), rtol=0, atol=0)
    one = ConceptEmbedding(torch.ones(2, 1), torch.full((1,), -2.0)).to_bytes()
    assert one == (b"\x00\x3c\x00\x3c", b"\x00\xc0")  # float16 little-endian
    with pytest.raises(ValueError, match=r"expected 2176"):
        ConceptEmbedding.from_bytes(tokens[:-2], lm_weight, 17, 64)


def test_model_version_and_check_files(engine, tiny_bundle):
    digest = file_sha256(tiny_bundle / "aligner.ckpt")[:8]
    assert engine.model_version == f"tiny-random:dinov2+llava+aligner-{digest}+pos-release"
    assert engine.random_weights is True
    assert [(w, ok) for w, _, ok in engine.check_files()] == [
        ("reference encoder", True),
        ("LVLM", True),
        ("aligner", True),
    ]


def test_missing_weights_name_the_fix(tmp_path, photos):
    sources = PlvmSources("nonexistent-org/no-such-dinov2", "nonexistent-org/no-such-llava", tmp_path / "aligner.ckpt")
    engine = PlvmEngine(sources, device="cpu")
    assert [ok for _, _, ok in engine.check_files()] == [False, False, False]
    with pytest.raises(MissingWeightsError) as err:
        engine.encode_references(photos[:1])
    assert "nonexistent-org/no-such-dinov2" in str(err.value) and "pipeline models pull" in str(err.value)
    assert engine.recognition_scores(photos[0], []) == []  # no people: nothing to load, no error
    with pytest.raises(MissingWeightsError) as err:
        engine.ask(photos[0], "Hi?", [])
    assert "nonexistent-org/no-such-llava" in str(err.value)
    with pytest.raises(MissingWeightsError, match="Google Drive"):
        engine.model_version  # noqa: B018


def test_missing_aligner_file_is_reported_with_location(tiny_bundle, tmp_path, photos):
    sources = tiny_sources(tiny_bundle)
    engine = PlvmEngine(PlvmSources(sources.dinov2, sources.llava, tmp_path / "models" / "aligner.ckpt"), device="cpu")
    with pytest.raises(MissingWeightsError) as err:
        engine.encode_references(photos[:1])
    assert str(tmp_path / "models" / "aligner.ckpt") in str(err.value) and "Chau Pham" in str(err.value)


def test_local_folder_missing(tmp_path, photos):
    engine = PlvmEngine(PlvmSources(str(tmp_path / "nope"), "x/y", tmp_path / "a.ckpt"), device="cpu")
    with pytest.raises(MissingWeightsError, match=r"nope does not exist .*PIPELINE_DINOV2_MODEL"):
        engine.encode_references(photos[:1])


def test_from_settings_profiles(tiny_bundle, tmp_path):
    from pipeline.config import Settings

    tiny = PlvmEngine.from_settings(Settings(profile="tiny", tiny_bundle=tiny_bundle, data_dir=tmp_path, device="cpu"))
    assert tiny.random_weights and tiny.sources.llava == str(tiny_bundle.resolve() / "llava")
    real = PlvmEngine.from_settings(Settings(profile="plvm", data_dir=tmp_path, device="cpu", max_new_tokens=7))
    assert real.sources.aligner == tmp_path.resolve() / "models" / "aligner.ckpt"
    assert (real.sources.dinov2, real.sources.llava) == ("facebook/dinov2-base", "llava-hf/llava-1.5-7b-hf")
    assert not real.random_weights and real.max_new_tokens == 7 and real.dtype == torch.float32
    with pytest.raises(PlvmError, match="faces"):
        PlvmEngine.from_settings(Settings(profile="faces", data_dir=tmp_path))
    with pytest.raises(MissingWeightsError, match="PIPELINE_TINY_BUNDLE"):
        PlvmEngine.from_settings(Settings(profile="tiny", data_dir=tmp_path))


def test_tiny_bundle_manifest(tiny_bundle):
    manifest = json.loads((tiny_bundle / "bundle.json").read_text())
    assert manifest["random"] is True and (tiny_bundle / manifest["aligner"]).is_file()
    assert json.loads((tiny_bundle / "aligner.ckpt.json").read_text())["config"]["width"] == 32
    assert (tiny_bundle / "llava" / "tokenizer.json").is_file() and (tiny_bundle / "dinov2" / "config.json").is_file()


def test_pull_models_error_path(tmp_path, monkeypatch):
    import huggingface_hub.constants

    from pipeline.config import Settings
    from pipeline.plvm.engine import pull_models

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    settings = Settings(data_dir=tmp_path, dinov2_model="nonexistent-org/no-such-dinov2")
    with pytest.raises(ModelDownloadError, match="nonexistent-org/no-such-dinov2"):
        pull_models(settings, cache_dir=tmp_path / "hub")
    local = Settings(data_dir=tmp_path, dinov2_model=str(tmp_path), llava_model=str(tmp_path))
    assert pull_models(local) == [Path(tmp_path), Path(tmp_path)]  # local folders are not downloaded


def test_worker_warm_up_loads_what_tagging_uses(tiny_bundle, tmp_path, monkeypatch):
    """tagging.warm_up (run by each worker process at start): LLaVA and the face model load, the
    reference side (enrolment only) does not."""
    from pipeline import profiles
    from pipeline.config import Settings
    from pipeline.profiles import make_profile
    from pipeline.recognition.faces import get_face_model
    from pipeline.store.db import upgrade
    from pipeline.tagging.batch import warm_up

    settings = Settings(profile="tiny", tiny_bundle=tiny_bundle, data_dir=tmp_path, device="cpu")
    upgrade(settings.db_url)
    profile = make_profile(settings)
    assert not profile.engine.lvlm_loaded
    profile.warm_up()
    assert profile.engine.lvlm_loaded and not profile.engine.reference_loaded
    monkeypatch.setattr(profiles, "_cache", {})  # leave other tests' process-wide profiles alone
    warm_up(settings)  # the process-wide profile and face model
    assert profiles.get_profile(settings).engine.lvlm_loaded
    assert get_face_model().loaded and get_face_model()._warm
