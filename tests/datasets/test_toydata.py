"""The procedurally drawn identity dataset."""

from __future__ import annotations

import json
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.datasets.release import load_identity_folders, load_vqa_items
from pipeline.datasets.toy import (
    COLOURS,
    MIN_TRAIT_DISTANCE,
    QUESTIONS,
    make_toy_identities,
    make_toy_vqa,
    sample_identities,
)

N_IDENTITIES, N_QUERIES, SIZE = 8, 6, 64


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_toy_identities(tmp_path_factory.mktemp("toy") / "data", N_IDENTITIES, N_QUERIES, seed=3, size=SIZE)


def _files(root: Path) -> dict[str, bytes]:
    return {path.relative_to(root).as_posix(): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def test_same_seed_same_bytes_other_seed_other_images(toy: Path, tmp_path: Path) -> None:
    again = make_toy_identities(tmp_path / "again", N_IDENTITIES, N_QUERIES, seed=3, size=SIZE)
    assert _files(again) == _files(toy)
    other = _files(make_toy_identities(tmp_path / "other", N_IDENTITIES, N_QUERIES, seed=4, size=SIZE))
    first = _files(toy)
    assert other.keys() == first.keys()
    assert sum(other[name] != first[name] for name in first if name.endswith(".png")) == N_IDENTITIES * (N_QUERIES + 1)


def test_counts_and_release_format(toy: Path) -> None:
    dataset = load_identity_folders(toy)
    assert dataset.problems == []
    assert [identity.name for identity in dataset.identities] == [f"id_{i:03d}" for i in range(N_IDENTITIES)]
    assert all(len(identity.queries) == N_QUERIES for identity in dataset.identities)
    assert dataset.identities[0].queries[0].name == "query_img_00.png"
    assert "toy.json" in {path.name for path in dataset.ignored} <= {"toy.json", "vqa.json"}
    assert len(list(toy.rglob("*.png"))) == N_IDENTITIES * (N_QUERIES + 1)
    with Image.open(dataset.identities[0].reference) as image:
        assert image.size == (SIZE, SIZE) and image.mode == "RGB"
    manifest = json.loads((toy / "toy.json").read_text())
    assert len(manifest["identities"]) == N_IDENTITIES and len(manifest["photos"]) == N_IDENTITIES * (N_QUERIES + 1)


def test_refuses_to_overwrite(toy: Path) -> None:
    with pytest.raises(FileExistsError):
        make_toy_identities(toy, 2, 2)


def test_identities_differ_in_several_traits() -> None:
    identities = sample_identities(40, seed=1)
    for a, b in combinations(identities, 2):
        assert sum(a[key] != b[key] for key in a) >= MIN_TRAIT_DISTANCE


def _trait_colour_share(image: Path, traits: dict[str, str]) -> np.ndarray:
    """Share of pixels within 10 levels of the shirt, skin and hair colours: shape (3,)."""
    palette = np.array([COLOURS[key][traits[key]] for key in ("shirt_colour", "skin", "hair_colour")])
    with Image.open(image) as opened:
        pixels = np.asarray(opened, dtype=int).reshape(-1, 1, 3)
    return (np.abs(pixels - palette[None]).max(axis=-1) <= 10).mean(axis=0)


def test_photos_carry_their_identity_traits(toy: Path) -> None:
    identities = json.loads((toy / "toy.json").read_text())["identities"]
    own, others, recognised = [], [], 0
    for name in identities:
        for query in sorted((toy / name).glob("query_img_*.png")):
            shares = {other: _trait_colour_share(query, traits) for other, traits in identities.items()}
            own.append(shares[name].sum())
            others.append(np.mean([share.sum() for other, share in shares.items() if other != name]))
            recognised += max(shares, key=lambda other: shares[other].min()) == name
    assert np.mean(own) > 2 * np.mean(others)
    assert recognised >= 0.8 * N_IDENTITIES * N_QUERIES


def test_toy_vqa_loads_and_answers_match_traits(toy: Path) -> None:
    path = make_toy_vqa(toy, per_identity=4)
    items = load_vqa_items(path)
    raw = json.loads(path.read_text())
    identities = json.loads((toy / "toy.json").read_text())["identities"]
    assert len(items) == N_IDENTITIES * 4
    assert sum(item.text_only for item in items) == N_IDENTITIES * 2
    for item, source in zip(items, raw, strict=True):
        trait, truth = source["trait"], identities[source["identity"]][source["trait"]]
        assert item.choices[item.answer] == QUESTIONS[trait][1].get(truth, truth)  # "none" -> "no glasses"
        assert len(item.choices) >= 3 and len(set(item.choices.values())) == len(item.choices)
        assert item.reference.parent.name == source["identity"]
        assert item.query is None or item.query.parent.name == source["identity"]
    assert make_toy_vqa(toy, per_identity=4).read_bytes() == path.read_bytes()
