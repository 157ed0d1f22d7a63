"""Scene prompts: the documented defaults and prompt files."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.synth.prompts import DEFAULT_NEGATIVE_PROMPT, DEFAULT_PROMPTS, load_prompts


def test_default_prompts_are_varied_person_scenes() -> None:
    assert 25 <= len(DEFAULT_PROMPTS) <= 40
    assert len(set(DEFAULT_PROMPTS)) == len(DEFAULT_PROMPTS), "duplicate default prompt"
    for prompt in DEFAULT_PROMPTS:
        assert prompt == prompt.strip() and "\n" not in prompt
        assert "person" in prompt, f"prompt does not name the subject: {prompt!r}"
    text = " ".join(DEFAULT_PROMPTS)
    for scene in ("mountains", "beach", "kitchen", "office", "night", "snow"):
        assert scene in text
    assert "extra faces" in DEFAULT_NEGATIVE_PROMPT


def test_load_prompts_default_is_a_fresh_copy() -> None:
    prompts = load_prompts(None)
    assert prompts == list(DEFAULT_PROMPTS)
    prompts.append("x")
    assert load_prompts() == list(DEFAULT_PROMPTS)


def test_load_prompts_file_one_per_line(tmp_path: Path) -> None:
    path = tmp_path / "prompts.txt"
    path.write_text(
        "\ufeff# scenes for the test\n"
        "a photo of a person on a bridge\n"
        "\n"
        "   a photo of a person in a boat   \n"
        "# another comment\n"
        "a photo of a person on a bridge\n",
        encoding="utf-8",
    )
    assert load_prompts(path) == [
        "a photo of a person on a bridge",
        "a photo of a person in a boat",
        "a photo of a person on a bridge",
    ]
    assert load_prompts(str(path)) == load_prompts(path)


def test_load_prompts_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        load_prompts(tmp_path / "nope.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("# only a comment\n\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no prompt"):
        load_prompts(empty)
