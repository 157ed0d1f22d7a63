"""`synthesize` end to end through the real diffusers code path, on a tiny random SD 1.5 +
IP-Adapter bundle built offline (pipeline.synth.tiny): same `load_pipeline` as production
(`StableDiffusionPipeline.from_pretrained(local_files_only=True)` + `load_ip_adapter`)."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("diffusers")

from pipeline.datasets.release import load_identity_folders
from pipeline.errors import MissingWeights
from pipeline.synth import SynthConfig, image_seed, load_pipeline, synthesize
from pipeline.synth.tiny import build_tiny_synth_pipeline, tiny_synth_config


def _noise_face(path: Path, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path)
    return path


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB")).astype(np.int16)


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():  # type: ignore[no-untyped-def]
    """The tiny models gain nothing from threads, and on a busy 2-core box they lose a lot."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_synth_pipeline(tmp_path_factory.mktemp("tiny-synth"))


@pytest.fixture(scope="module")
def config(tiny_root: Path) -> SynthConfig:
    return tiny_synth_config(tiny_root)


@pytest.fixture(scope="module")
def pipe(config: SynthConfig):  # type: ignore[no-untyped-def]
    return load_pipeline(config)


@pytest.fixture
def faces(tmp_path: Path) -> Path:
    """Two identities (an identity folder and a flat file) and one corrupt face file."""
    root = tmp_path / "faces"
    _noise_face(root / "alice" / "ref_img.jpg", seed=1)
    _noise_face(root / "bob.png", seed=2)
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    return root


def test_tiny_bundle_has_the_hub_layout(tiny_root: Path) -> None:
    index = json.loads((tiny_root / "base" / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionPipeline"
    assert index["safety_checker"] == [None, None]
    models = tiny_root / "ip-adapter" / "models"
    assert (models / "image_encoder" / "config.json").is_file()
    from safetensors import safe_open

    with safe_open(str(models / "ip-adapter-plus-face_sd15.safetensors"), framework="pt") as f:
        keys = set(f.keys())
    assert "image_proj.latents" in keys and "image_proj.layers.3.1.3.weight" in keys
    assert {"ip_adapter.1.to_k_ip.weight", "ip_adapter.3.to_v_ip.weight"} <= keys


def test_synthesize_writes_identity_folders_and_manifest(faces: Path, tmp_path: Path, config: SynthConfig) -> None:
    out = tmp_path / "out"
    report = synthesize(faces, out, config, progress=False)  # pipe=None: loads through load_pipeline

    assert report.identities == ["alice", "bob"]
    assert (report.generated, report.skipped) == (4, 0)
    assert len(report.failures) == 1 and report.failures[0].startswith("broken: unreadable face image broken.png")
    assert not report.ok

    dataset = load_identity_folders(out)
    assert dataset.problems == []
    assert [i.name for i in dataset.identities] == ["alice", "bob"]
    for identity in dataset.identities:
        assert identity.reference.name == "ref_img.png"
        assert [q.name for q in identity.queries] == ["query_img_000.png", "query_img_001.png"]
        for query in identity.queries:
            with Image.open(query) as im:
                assert (im.format, im.mode, im.size) == ("PNG", "RGB", (32, 32))
    # The reference is the given face, losslessly.
    assert np.array_equal(_pixels(out / "bob" / "ref_img.png"), _pixels(faces / "bob.png"))

    manifest = json.loads((out / "synth.json").read_text())
    settings = manifest["settings"][manifest["current_settings"]]
    assert settings["base_model"] == config.base_model
    assert settings["ip_adapter_weight_name"] == "ip-adapter-plus-face_sd15.safetensors"
    assert settings["ip_adapter_scale"] == 0.7 and settings["steps"] == 2
    assert set(manifest["identities"]) == {"alice", "bob"}
    for name, entry in manifest["identities"].items():
        assert entry["source_sha256"] and Path(entry["source"]).is_file()
        assert [r["file"] for r in entry["images"]] == ["query_img_000.png", "query_img_001.png"]
        for record in entry["images"]:
            assert record["prompt"] in config.prompts
            assert record["seed"] == image_seed(config.seed, name, record["index"])
        assert entry["images"][0]["prompt"] != entry["images"][1]["prompt"]


def test_rerun_skips_existing_and_regenerates_identically(
    faces: Path, tmp_path: Path, config: SynthConfig, pipe
) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out"
    synthesize(faces, out, config, pipe=pipe, progress=False)
    first = {p: p.read_bytes() for p in sorted(out.glob("*/query_img_*.png"))}
    manifest_before = json.loads((out / "synth.json").read_text())

    again = synthesize(faces, out, config, pipe=pipe, progress=False)
    assert (again.generated, again.skipped) == (0, 4)
    assert {p: p.read_bytes() for p in first} == first
    assert json.loads((out / "synth.json").read_text())["identities"] == manifest_before["identities"]

    # Nothing left to do => no model is loaded (this config's base model does not even exist);
    # the kept images were made with other settings, which the report says.
    gone = replace(config, base_model=str(tmp_path / "deleted-model"))
    idle = synthesize(faces, out, gone, progress=False)
    assert (idle.generated, idle.skipped) == (0, 4)
    assert any("4 existing images were kept although they were made with other settings" in n for n in idle.notes)

    # Lose one image (an interrupted run): only that one is made again, bit-identical.
    lost = out / "alice" / "query_img_001.png"
    lost.unlink()
    resumed = synthesize(faces, out, config, pipe=pipe, progress=False)
    assert (resumed.generated, resumed.skipped) == (1, 3)
    assert lost.read_bytes() == first[lost]

    # More images per identity: only the new indices are generated.
    more = synthesize(faces, out, replace(config, images_per_identity=3), pipe=pipe, progress=False)
    assert (more.generated, more.skipped) == (2, 4)

    # A changed face invalidates that identity's images.
    _noise_face(faces / "bob.png", seed=99)
    changed = synthesize(faces, out, config, pipe=pipe, progress=False)
    assert (changed.generated, changed.skipped) == (2, 2)
    assert any("bob: face image changed" in note for note in changed.notes)
    assert sorted(p.name for p in (out / "bob").glob("query_img_*")) == ["query_img_000.png", "query_img_001.png"]
    assert (out / "bob" / "query_img_000.png").read_bytes() != first[out / "bob" / "query_img_000.png"]


def test_same_seed_same_images_other_seed_other_images(faces: Path, tmp_path: Path, config: SynthConfig, pipe) -> None:  # type: ignore[no-untyped-def]
    one = replace(config, images_per_identity=1)
    a = synthesize(faces, tmp_path / "a", one, pipe=pipe, progress=False)
    b = synthesize(faces, tmp_path / "b", one, pipe=pipe, progress=False)
    c = synthesize(faces, tmp_path / "c", replace(one, seed=123), pipe=pipe, progress=False)
    assert a.generated == b.generated == c.generated == 2
    for name in ("alice", "bob"):
        image = f"{name}/query_img_000.png"
        assert (tmp_path / "a" / image).read_bytes() == (tmp_path / "b" / image).read_bytes()
        assert not np.array_equal(_pixels(tmp_path / "a" / image), _pixels(tmp_path / "c" / image))


def test_ip_adapter_conditions_on_the_face(tmp_path: Path, config: SynthConfig, pipe) -> None:  # type: ignore[no-untyped-def]
    """Same identity name => same seed and prompt; only the face image differs."""
    _noise_face(tmp_path / "faces1" / "x.png", seed=10)
    _noise_face(tmp_path / "faces2" / "x.png", seed=20)
    one = replace(config, images_per_identity=1)

    def generate(faces: str, out: str, cfg: SynthConfig) -> np.ndarray:
        synthesize(tmp_path / faces, tmp_path / out, cfg, pipe=pipe, progress=False)
        manifest = json.loads((tmp_path / out / "synth.json").read_text())
        record = manifest["identities"]["x"]["images"][0]
        assert record["seed"] == image_seed(cfg.seed, "x", 0)
        return _pixels(tmp_path / out / "x" / "query_img_000.png")

    with_face1, with_face2 = generate("faces1", "o1", one), generate("faces2", "o2", one)
    assert np.abs(with_face1 - with_face2).mean() > 1.0, "the face image does not reach the UNet"
    # With the adapter scaled to 0 the face no longer matters: the difference came through it.
    off = replace(one, ip_adapter_scale=0.0)
    assert np.array_equal(generate("faces1", "z1", off), generate("faces2", "z2", off))


def test_full_face_variant_loads_and_generates(tmp_path: Path) -> None:
    root = build_tiny_synth_pipeline(tmp_path / "tiny-full", variant="full-face")
    config = tiny_synth_config(root, variant="full-face", images_per_identity=1)
    pipe = load_pipeline(config)
    assert type(pipe.unet.encoder_hid_proj.image_projection_layers[0]).__name__ == "IPAdapterFullImageProjection"
    _noise_face(tmp_path / "faces" / "x.png", seed=3)
    report = synthesize(tmp_path / "faces", tmp_path / "out", config, pipe=pipe, progress=False)
    assert report.generated == 1 and report.ok


def test_load_pipeline_missing_models(tiny_root: Path, tmp_path: Path, config: SynthConfig) -> None:
    missing_base = replace(config, base_model="nonexistent-org/no-such-sd15", cache_dir=str(tmp_path / "cache"))
    with pytest.raises(MissingWeights) as info:
        load_pipeline(missing_base)
    assert "'nonexistent-org/no-such-sd15'" in str(info.value)
    assert "hf download nonexistent-org/no-such-sd15" in str(info.value)

    # A local IP-Adapter folder without the weight file.
    partial = tmp_path / "ip-partial"
    shutil.copytree(tiny_root / "ip-adapter", partial)
    (partial / "models" / config.ip_adapter_weight_name).unlink()
    with pytest.raises(MissingWeights, match=r"ip-partial lacks models/ip-adapter-plus-face_sd15\.safetensors"):
        load_pipeline(replace(config, ip_adapter_repo=str(partial)))

    # synthesize() loads nothing when no face is usable, and reports why.
    (tmp_path / "empty-faces").mkdir()
    report = synthesize(tmp_path / "empty-faces", tmp_path / "out", missing_base, progress=False)
    assert report.identities == [] and report.generated == 0


def test_out_dir_must_differ_from_faces_dir(faces: Path, config: SynthConfig) -> None:
    with pytest.raises(ValueError, match="must differ"):
        synthesize(faces, faces, config, progress=False)


def _put_in_fake_cache(cache: Path, repo_id: str, folder: Path) -> Path:
    """Lay ``folder`` out as a Hugging Face hub cache snapshot of ``repo_id`` (refs/main -> commit)."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    shutil.copytree(folder, repo / "snapshots" / commit)
    return repo / "snapshots" / commit


def test_hub_ids_load_from_the_local_cache_only(tiny_root: Path, tmp_path: Path, config: SynthConfig) -> None:
    """Hub ids (not folders) resolve through the HF cache with local_files_only, like the real models."""
    cache = tmp_path / "hub"
    base = _put_in_fake_cache(cache, "test-org/tiny-sd15", tiny_root / "base")
    _put_in_fake_cache(cache, "test-org/tiny-ip-adapter", tiny_root / "ip-adapter")
    hub = replace(
        config, base_model="test-org/tiny-sd15", ip_adapter_repo="test-org/tiny-ip-adapter", cache_dir=str(cache)
    )
    pipe = load_pipeline(hub)
    assert pipe.image_encoder is not None and pipe.unet.encoder_hid_proj is not None

    shutil.rmtree(base / "unet")  # a partial download
    with pytest.raises(MissingWeights) as info:
        load_pipeline(hub)
    assert "'test-org/tiny-sd15' is only partly in the local Hugging Face cache" in str(info.value)
    assert "hf download test-org/tiny-sd15" in str(info.value)
