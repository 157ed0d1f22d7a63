"""Synth pieces that need no diffusion model: config checks, seeds, prompt cycling, input folders,
missing-model errors."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
from PIL import Image

from pipeline.errors import MissingWeights
from pipeline.synth import SynthConfig, check_models, discover_faces, download_instructions, image_seed, prompt_for
from pipeline.synth.generator import DEFAULT_BASE_MODEL, DEFAULT_IP_ADAPTER_REPO, DEFAULT_IP_ADAPTER_WEIGHT


def _face(path: Path, colour: tuple[int, int, int] = (120, 80, 60)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (64, 64), colour).save(path)
    return path


def test_config_defaults_and_validation() -> None:
    config = SynthConfig()
    assert config.base_model == "stable-diffusion-v1-5/stable-diffusion-v1-5"
    assert (config.ip_adapter_repo, config.ip_adapter_subfolder) == ("h94/IP-Adapter", "models")
    assert config.ip_adapter_weight_name == "ip-adapter-plus-face_sd15.safetensors"
    assert config.device == "auto" and config.dtype == "auto"
    assert SynthConfig(prompts=["a", "b"]).prompts == ("a", "b")
    for bad in (
        {"steps": 0},
        {"size": 500},
        {"prompts": []},
        {"prompts": ["ok", " "]},
        {"images_per_identity": -1},
        {"ip_adapter_scale": -0.1},
    ):
        with pytest.raises(ValueError, match="invalid SynthConfig"):
            SynthConfig(**bad)


def test_seeds_are_stable_and_distinct() -> None:
    assert image_seed(0, "alice", 0) == image_seed(0, "alice", 0)
    seeds = {image_seed(0, name, i) for name in ("alice", "bob") for i in range(50)}
    assert len(seeds) == 100
    assert image_seed(1, "alice", 0) != image_seed(0, "alice", 0)
    assert all(0 <= s < 2**31 for s in seeds)


def test_prompts_cycle_through_the_whole_list() -> None:
    prompts = [f"p{i}" for i in range(7)]
    got = [prompt_for(prompts, "alice", i) for i in range(14)]
    assert sorted(got[:7]) == sorted(prompts), "seven images must use seven different prompts"
    assert got[7:] == got[:7], "the list must cycle"
    start = prompts.index(got[0])
    assert got[:7] == prompts[start:] + prompts[:start], "consecutive images take consecutive prompts"


def test_discover_faces_folders_and_flat_files(tmp_path: Path) -> None:
    faces = tmp_path / "faces"
    _face(faces / "alice" / "ref_img.jpg")
    _face(faces / "alice" / "query_img_0.png")  # existing queries: the reference is used
    _face(faces / "bob" / "portrait.webp")  # a folder with one image
    _face(faces / "carol.png")  # a flat file
    _face(faces / "dave" / "a.png")
    _face(faces / "dave" / "b.png")  # ambiguous: two images, no ref_img
    (faces / "erin").mkdir()  # empty folder
    _face(faces / "carol" / "ref_img.png")  # name clash with carol.png (the folder sorts first)
    _face(faces / ".hidden.png")
    (faces / "notes.txt").write_text("hi")
    out = faces / "out"
    _face(out / "zed" / "ref_img.png")  # the output folder inside the input is skipped

    sources, problems, notes = discover_faces(faces, exclude=out)
    assert [(s.name, s.path.relative_to(faces).as_posix()) for s in sources] == [
        ("alice", "alice/ref_img.jpg"),
        ("bob", "bob/portrait.webp"),
        ("carol", "carol/ref_img.png"),  # sorted before carol.png, which is reported
    ]
    assert any(p.startswith("dave:") and "ref_img" in p for p in problems)
    assert any(p.startswith("erin:") and "no image" in p for p in problems)
    assert any(p.startswith("carol:") and "twice" in p for p in problems)
    assert notes == ["ignored notes.txt (not an image or identity folder)"]
    with pytest.raises(FileNotFoundError):
        discover_faces(tmp_path / "missing")


def test_missing_hub_model_names_id_and_download_command(tmp_path: Path) -> None:
    config = SynthConfig(base_model="nonexistent-org/no-such-model", cache_dir=str(tmp_path / "empty-cache"))
    with pytest.raises(MissingWeights) as info:
        check_models(config)
    message = str(info.value)
    assert "'nonexistent-org/no-such-model'" in message
    assert "never downloads" in message
    assert 'hf download nonexistent-org/no-such-model --include "*.json"' in message
    assert "snapshot_download('nonexistent-org/no-such-model'" in message
    assert "h94/IP-Adapter" not in message, "only the missing model's command"


def test_missing_ip_adapter_names_files(tmp_path: Path) -> None:
    base = tmp_path / "base"
    base.mkdir()
    (base / "model_index.json").write_text("{}")
    config = SynthConfig(base_model=str(base), cache_dir=str(tmp_path / "empty-cache"))
    with pytest.raises(MissingWeights) as info:
        check_models(config)
    message = str(info.value)
    assert f"'{DEFAULT_IP_ADAPTER_REPO}'" in message
    assert (
        f"hf download {DEFAULT_IP_ADAPTER_REPO} models/{DEFAULT_IP_ADAPTER_WEIGHT} "
        "models/image_encoder/config.json models/image_encoder/model.safetensors"
    ) in message

    local = SynthConfig(base_model=str(tmp_path / "nowhere"))
    with pytest.raises(MissingWeights, match="nowhere.*model_index.json"):
        check_models(local)


def test_download_instructions_cover_both_hub_models() -> None:
    commands = download_instructions(SynthConfig())
    assert commands[0].startswith(f"hf download {DEFAULT_BASE_MODEL} ")
    assert '--exclude "*.fp16.safetensors"' in commands[0]
    assert commands[1].startswith(f"hf download {DEFAULT_IP_ADAPTER_REPO} models/{DEFAULT_IP_ADAPTER_WEIGHT}")
    fp16 = download_instructions(SynthConfig(variant="fp16"))
    assert '--include "*/*.fp16.safetensors"' in fp16[0]
