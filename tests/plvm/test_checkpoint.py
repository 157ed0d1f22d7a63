"""Aligner checkpoints: the released key/shape list (docs/plvm.md), strict errors, formats, inference."""

from __future__ import annotations

import json

import pytest
import torch

from pipeline.plvm.aligner import Aligner, AlignerConfig, count_parameters
from pipeline.plvm.checkpoint import describe_checkpoint, infer_config, load_aligner, save_aligner, strict_load
from pipeline.plvm.errors import AlignerCheckpointError, MissingWeightsError


def released_shapes() -> dict[str, tuple[int, ...]]:
    """The key/shape list of docs/plvm.md, written out by hand."""
    shapes: dict[str, tuple[int, ...]] = {
        "latents": (1, 17, 768),
        "proj_in.weight": (768, 768),
        "proj_in.bias": (768,),
        "proj_out.weight": (4096, 768),
        "proj_out.bias": (4096,),
        "norm_out.weight": (4096,),
        "norm_out.bias": (4096,),
        "linear_weight_mapping.0.weight": (1024, 768),
        "linear_weight_mapping.0.bias": (1024,),
        "linear_weight_mapping.2.weight": (1024, 1024),
        "linear_weight_mapping.2.bias": (1024,),
        "linear_weight_mapping.4.weight": (4096, 1024),
        "linear_weight_mapping.4.bias": (4096,),
    }
    for i in range(4):
        shapes |= {
            f"layers.{i}.0.norm1.weight": (768,),
            f"layers.{i}.0.norm1.bias": (768,),
            f"layers.{i}.0.norm2.weight": (768,),
            f"layers.{i}.0.norm2.bias": (768,),
            f"layers.{i}.0.to_q.weight": (1024, 768),
            f"layers.{i}.0.to_kv.weight": (2048, 768),
            f"layers.{i}.0.to_out.weight": (768, 1024),
            f"layers.{i}.1.0.weight": (768,),
            f"layers.{i}.1.0.bias": (768,),
            f"layers.{i}.1.1.weight": (3072, 768),
            f"layers.{i}.1.3.weight": (768, 3072),
        }
    return shapes


@pytest.fixture(scope="module")
def released_state() -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return {k: torch.randn(shape, generator=gen) for k, shape in released_shapes().items()}


@pytest.fixture(scope="module")
def released_file(tmp_path_factory, released_state):
    path = tmp_path_factory.mktemp("ckpt") / "checkpoint.ckpt"
    torch.save(released_state, path)  # the release: a plain state dict, no sidecar
    return path


def test_released_layout_loads_strictly(released_file, released_state):
    assert sum(torch.Size(s).numel() for s in released_shapes().values()) == 41_272_832
    aligner = load_aligner(released_file)
    assert aligner.config == AlignerConfig()
    assert count_parameters(aligner) == 41_272_832
    for key, value in aligner.state_dict().items():
        assert torch.equal(value, released_state[key]), key
    tokens, lm_weight = aligner(torch.randn(1, 257, 768))
    assert tokens.shape == (1, 17, 4096) and lm_weight.shape == (1, 4096)


def test_wrong_shape_names_key_and_shapes(released_state):
    bad = dict(released_state)
    bad["layers.2.0.to_kv.weight"] = torch.zeros(2048, 700)
    with pytest.raises(AlignerCheckpointError) as err:
        strict_load(Aligner(), bad, "bad.ckpt")
    assert "layers.2.0.to_kv.weight: expected (2048, 768), found (2048, 700)" in str(err.value)
    assert err.value.mismatched == [("layers.2.0.to_kv.weight", (2048, 768), (2048, 700))]


def test_missing_and_unexpected_keys_are_listed(tmp_path):
    cfg = AlignerConfig(width=32, depth=2, heads=2, head_dim=16, n_queries=5, out_dim=24, weight_head_width=16)
    state = Aligner(cfg).state_dict()
    del state["layers.1.1.3.weight"]
    state["extra.bias"] = torch.zeros(3)
    path = tmp_path / "small.ckpt"
    torch.save(state, path)
    with pytest.raises(AlignerCheckpointError) as err:
        load_aligner(path, config=cfg)
    message = str(err.value)
    assert "missing keys (1): layers.1.1.3.weight" in message and "unexpected keys (1): extra.bias" in message
    assert str(path) in message


@pytest.mark.parametrize("wrap", ["state_dict", "model", "module_prefix"])
def test_nested_and_prefixed_checkpoints_load(tmp_path, wrap):
    cfg = AlignerConfig(width=32, depth=1, heads=2, head_dim=16, n_queries=5, out_dim=24, weight_head_width=16)
    state = Aligner(cfg).state_dict()
    payload = {"module." + k: v for k, v in state.items()} if wrap == "module_prefix" else {wrap: state, "step": 3}
    path = tmp_path / "wrapped.pt"
    torch.save(payload, path)
    loaded = load_aligner(path, config=cfg)
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in state.items())


def test_safetensors_round_trip_with_sidecar(tmp_path):
    cfg = AlignerConfig(
        width=48, depth=3, heads=3, head_dim=32, n_queries=9, out_dim=40, ff_mult=2, weight_head_width=24
    )
    torch.manual_seed(0)
    aligner = Aligner(cfg)
    path = save_aligner(aligner, tmp_path / "aligner.safetensors")
    assert path.read_bytes()[8:9] == b"{"  # safetensors header, not a pickle
    assert json.loads((tmp_path / "aligner.safetensors.json").read_text())["config"]["heads"] == 3
    loaded = load_aligner(path)  # heads=3 with head_dim 32 is only knowable from the sidecar
    assert loaded.config == cfg
    z = torch.randn(2, 6, 48)
    for a, b in zip(aligner(z), loaded(z), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    info = describe_checkpoint(path)
    assert info["format"] == "safetensors" and info["config_source"] == "sidecar"
    assert info["parameters"] == count_parameters(aligner) and len(info["sha256"]) == 64


def test_infers_non_default_config_from_shapes(tmp_path):
    cfg = AlignerConfig(
        width=96, depth=3, heads=2, head_dim=64, n_queries=9, out_dim=80, ff_mult=2, weight_head_width=56
    )
    state = Aligner(cfg).state_dict()
    assert infer_config(state) == cfg
    path = tmp_path / "plain.ckpt"
    torch.save(state, path)  # no sidecar
    assert load_aligner(path).config == cfg
    assert describe_checkpoint(path)["config_source"] == "inferred from shapes"


def test_missing_file_says_where_to_get_it(tmp_path):
    with pytest.raises(MissingWeightsError) as err:
        load_aligner(tmp_path / "models" / "aligner.ckpt")
    message = str(err.value)
    assert str(tmp_path / "models" / "aligner.ckpt") in message
    assert "Google Drive" in message and "PLVM" in message and "Chau Pham" in message


def test_not_a_state_dict_is_a_checkpoint_error(tmp_path):
    path = tmp_path / "junk.ckpt"
    path.write_bytes(b"not a torch file")
    with pytest.raises(AlignerCheckpointError, match="cannot be read as a plain state dict"):
        load_aligner(path)
