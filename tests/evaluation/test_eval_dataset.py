"""The release's recognition folders and multiple-choice JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from pipeline.datasets.release import VqaFormatError, load_identity_folders, load_vqa_items, odd_items, pairs


def _image(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (200, 10, 10)).save(path)
    return path


@pytest.fixture()
def recognition_root(tmp_path: Path) -> Path:
    root = tmp_path / "recognition"
    for name in ("ref_img.png", "query_img1.jpg", "query_img10.png", "query_img2.png"):
        _image(root / "alice" / name)
    (root / "alice" / "notes.txt").write_text("not an image")
    _image(root / "alice" / "extra" / "query_img9.png")  # sub-folders are not part of the format
    _image(root / "bob" / "ref_img.JPG")
    _image(root / "bob" / "query_img.jpeg")
    _image(root / "carol" / "query_img_0.png")  # no reference
    _image(root / "dave" / "ref_img.png")  # no queries
    _image(root / ".thumbnails" / "ref_img.png")
    (root / "README.md").write_text("notes")
    return root


def test_identities_queries_and_order(recognition_root: Path) -> None:
    dataset = load_identity_folders(recognition_root)
    assert [identity.name for identity in dataset.identities] == ["alice", "bob"]
    alice, bob = dataset.identities
    assert alice.reference.name == "ref_img.png"
    assert [path.name for path in alice.queries] == ["query_img1.jpg", "query_img2.png", "query_img10.png"]
    assert bob.reference.name == "ref_img.JPG" and [path.name for path in bob.queries] == ["query_img.jpeg"]
    assert dataset.n_queries == 4


def test_unusable_folders_are_reported_not_dropped(recognition_root: Path) -> None:
    dataset = load_identity_folders(recognition_root)
    assert len(dataset.problems) == 2
    problems = "\n".join(dataset.problems)
    assert "carol: no reference image" in problems
    assert "dave: no query images" in problems
    ignored = {path.relative_to(recognition_root).as_posix() for path in dataset.ignored}
    assert ignored == {"README.md", ".thumbnails", "alice/notes.txt", "alice/extra"}


def test_yollava_layout_and_several_references(tmp_path: Path) -> None:
    """The release's Yo'LLaVA folders: ref_img.png + 0.png ... 9.png; several ref_img* all used."""
    root = tmp_path / "yollava"
    for name in ("ref_img.png", "0.png", "1.png", "10.png", "2.png"):
        _image(root / "frank" / name)
    for name in ("ref_img0.png", "ref_img.png", "ref_img1.jpg", "query_img0.png", "3.jpg", "ref_image.png"):
        _image(root / "eve" / name)
    dataset = load_identity_folders(root)
    assert dataset.problems == []
    eve, frank = dataset.identities
    assert [path.name for path in frank.queries] == ["0.png", "1.png", "2.png", "10.png"]
    assert [path.name for path in frank.references] == ["ref_img.png"]
    assert [path.name for path in eve.references] == ["ref_img.png", "ref_img0.png", "ref_img1.jpg"]
    assert eve.reference.name == "ref_img.png"
    assert [path.name for path in eve.queries] == ["3.jpg", "query_img0.png"]
    assert [path.name for path in dataset.ignored] == ["ref_image.png"]


def test_pairs_cover_every_identity_and_query(recognition_root: Path) -> None:
    dataset = load_identity_folders(recognition_root)
    all_pairs = list(pairs(dataset))
    assert len(all_pairs) == len(dataset.identities) * dataset.n_queries == 8
    assert len({(pair.identity, pair.query) for pair in all_pairs}) == 8
    positives = [pair for pair in all_pairs if pair.is_positive]
    assert len(positives) == dataset.n_queries
    assert all(pair.is_positive == (pair.identity == pair.owner) for pair in all_pairs)
    bob_negatives = {pair.query.name for pair in all_pairs if pair.identity == "bob" and not pair.is_positive}
    assert bob_negatives == {"query_img1.jpg", "query_img2.png", "query_img10.png"}


def test_missing_or_empty_root(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_identity_folders(tmp_path / "absent")
    empty = load_identity_folders(tmp_path)
    assert empty.identities == [] and len(empty.problems) == 1


def _write_vqa(tmp_path: Path, items: object) -> Path:
    path = tmp_path / "vqa.json"
    path.write_text(json.dumps(items))
    return path


@pytest.fixture()
def vqa_root(tmp_path: Path) -> Path:
    _image(tmp_path / "alice" / "ref_img.png")
    _image(tmp_path / "alice" / "query_img1.png")
    return tmp_path


def test_vqa_items_and_answer_normalisation(vqa_root: Path) -> None:
    item = {
        "ref_img": "alice/ref_img.png",
        "question": "What colour is <sks>'s shirt?",
        "multiple_choice": {"A": "Blue", "B": "Red", "C": "Green"},
    }
    path = _write_vqa(
        vqa_root,
        [
            {**item, "query_img": "alice/query_img1.png", "correct_answer": "B"},
            {**item, "correct_answer": "red"},  # option text, any case
            {**item, "correct_answer": "(c)"},
            {**item, "query_img": None, "correct_answer": "A."},
        ],
    )
    items = load_vqa_items(path)
    assert [i.answer for i in items] == ["B", "B", "C", "A"]
    assert [i.text_only for i in items] == [False, True, True, True]
    assert items[0].query == vqa_root / "alice" / "query_img1.png"
    assert items[0].reference == vqa_root / "alice" / "ref_img.png"
    assert items[2].index == 2 and items[0].choices == {"A": "Blue", "B": "Red", "C": "Green"}


def test_vqa_errors_name_each_bad_item(vqa_root: Path) -> None:
    good = {
        "ref_img": "alice/ref_img.png",
        "question": "Is <sks> smiling?",
        "multiple_choice": {"A": "yes", "B": "no"},
        "correct_answer": "A",
    }
    path = _write_vqa(
        vqa_root,
        [
            good,
            {**good, "question": 7},
            {**good, "correct_answer": "maybe"},
            {**good, "query_img": "alice/missing.png"},
            {key: value for key, value in good.items() if key != "multiple_choice"},
            {**good, "multiple_choice": {"A": "yes", "B": "yes"}, "correct_answer": "yes"},
            "not an object",
        ],
    )
    with pytest.raises(VqaFormatError) as caught:
        load_vqa_items(path)
    message = str(caught.value)
    assert "6 bad item(s) of 7" in message and "item 0" not in message
    assert "item 1: question must be a non-empty string" in message
    assert "item 2: correct_answer 'maybe'" in message
    assert "item 3: query_img" in message and "missing.png does not exist" in message
    assert "item 4: missing key(s) ['multiple_choice']" in message
    assert "item 5: correct_answer 'yes' matches several options" in message
    assert "item 6: must be an object" in message
    assert len(load_vqa_items(path.parent / _write_vqa(vqa_root, [good]).name)) == 1


def test_vqa_items_without_sks_in_the_question_are_loaded_and_listed(vqa_root: Path) -> None:
    """13 of the release's 350 items have <sks> only in the options, or nowhere."""
    good = {
        "ref_img": "alice/ref_img.png",
        "question": "Who is wearing a hat?",
        "multiple_choice": {"A": "<sks>", "B": "the person next to <sks>"},
        "correct_answer": "A",
    }
    items = load_vqa_items(
        _write_vqa(
            vqa_root,
            [good, {**good, "question": "Is <sks> smiling?"}, {**good, "multiple_choice": {"A": "yes", "B": "no"}}],
        )
    )
    assert [item.placeholder_in for item in items] == ["options", "question", "nowhere"]
    assert odd_items(items) == [
        "item 0: <sks> only in the options ('Who is wearing a hat?')",
        "item 2: <sks> nowhere ('Who is wearing a hat?')",
    ]


def test_vqa_file_must_be_a_list(vqa_root: Path) -> None:
    with pytest.raises(VqaFormatError, match="expected a JSON list"):
        load_vqa_items(_write_vqa(vqa_root, {"items": []}))
    (vqa_root / "broken.json").write_text("[{")
    with pytest.raises(VqaFormatError, match="not valid JSON"):
        load_vqa_items(vqa_root / "broken.json")


def test_vqa_root_and_file_check(tmp_path: Path) -> None:
    path = _write_vqa(
        tmp_path,
        [
            {
                "ref_img": "x/ref_img.png",
                "question": "<sks>?",
                "multiple_choice": {"A": "a", "B": "b"},
                "correct_answer": "A",
            }
        ],
    )
    with pytest.raises(VqaFormatError, match="ref_img .* does not exist"):
        load_vqa_items(path)
    (item,) = load_vqa_items(path, root=tmp_path / "images", check_files=False)
    assert item.reference == tmp_path / "images" / "x" / "ref_img.png"
