"""Prompt rendering and the exact token layout of docs/plvm.md, for one and for three people."""

from __future__ import annotations

import pytest

from pipeline.plvm.lvlm import LvlmRequest
from pipeline.plvm.prompts import (
    SYSTEM_PROMPT,
    answer_segments,
    concept_token,
    release_text,
    render_question,
    soft_tokens,
    tokens_to_names,
)


def test_render_question_names_and_placeholder():
    names = ["Susan", "Mary Ann", "Mary"]
    assert render_question("Is susan with MARY ANN and Mary?", names) == "Is <Susan> with <Mary_Ann> and <Mary>?"
    assert render_question("Susanna and Susan's dog", ["Susan"]) == "Susanna and <Susan>'s dog"
    assert render_question("Is <sks> in this photo?", ["Susan"]) == "Is <Susan> in this photo?"
    assert render_question(render_question("Is Susan here?", names), names) == "Is <Susan> here?"  # idempotent
    with pytest.raises(ValueError, match="<sks>"):
        render_question("Is <sks> here?", ["Susan", "Mike"])
    with pytest.raises(ValueError, match="distinct concept tokens"):
        render_question("Hi", ["Mary Ann", "Mary_Ann"])


def test_token_names_and_decoding_to_names():
    assert concept_token(" Mary  Ann ") == "<Mary_Ann>"
    assert soft_tokens("Susan", 16)[0] == "<Susan_soft_0>" and soft_tokens("Susan", 16)[-1] == "<Susan_soft_15>"
    assert (
        tokens_to_names("<Susan> and<Mike> play.<Susan><Mike>", ["Susan", "Mike"]) == "Susan and Mike play.Susan Mike"
    )


def _pieces(lvlm, encoded, names):
    """Token pieces with the image block as [IMG], concept tokens as [Name], soft tokens as [Name~k]."""
    tokens = lvlm.tokenizer.convert_ids_to_tokens(encoded.ids)
    out: list[str] = []
    for t in tokens:
        if t == "<image>":
            if out[-1:] != ["[IMG]"]:
                out.append("[IMG]")
        elif "_soft_" in t:
            out.append(f"[{t[1:].split('_soft_')[0]}~{t.rsplit('_', 1)[1][:-1]}]")
        elif t[1:-1] in names:
            out.append(f"[{t[1:-1]}]")
        else:
            out.append(t)
    return out


@pytest.mark.parametrize(
    "names, question, tail",
    [
        # the release's layout: a lone "▁" on both sides of the image, "▁" + text after a concept token
        (["Susan"], "Is <sks> in this photo?", ["Is", "[Susan]", "▁in", "▁this", "▁photo?", "▁ASSISTANT:"]),
        (["Susan"], "Where is <sks>?", ["W", "he", "re", "▁is", "[Susan]", "▁?", "▁ASSISTANT:"]),
        (["Susan"], "Is <sks>'s dog here?", ["Is", "[Susan]", "▁", "'s", "▁dog", "▁he", "re", "?", "▁ASSISTANT:"]),
        (
            ["Susan", "Mike", "Anna"],
            "Is Susan with mike and Anna?",
            ["Is", "[Susan]", "▁with", "[Mike]", "▁and", "[Anna]", "▁?", "▁ASSISTANT:"],
        ),
    ],
)
def test_token_layout_matches_the_release(engine, people, photos, names, question, tail):
    """Every piece spelled out (tiny tokenizer: SentencePiece-style "▁" pieces, its own merges)."""
    lvlm = engine.load_lvlm()
    chosen = [p for n in names for p in people if p.name == n]
    encoded = lvlm.prepare([LvlmRequest(photos[0], question, chosen)])[0]
    pieces = _pieces(lvlm, encoded, names)

    system = lvlm.tokenizer.tokenize(SYSTEM_PROMPT)
    assert system[:3] == ["▁A", "▁chat", "▁between"] and system[-1] == "▁questions."
    expected = ["<s>", *system]
    for name in names:  # [C] ▁is [S x16] .   per person
        expected += [f"[{name}]", "▁is", *[f"[{name}~{i}]" for i in range(16)], "."]
    expected += ["▁USER:", "▁", "[IMG]", "▁", "\n"]
    assert pieces[: len(expected)] == expected
    assert pieces[len(expected) : len(expected) + len(tail)] == tail
    if tail[-1] == "▁ASSISTANT:":
        assert len(pieces) == len(expected) + len(tail)
    image_start = lvlm.tokenizer.convert_ids_to_tokens(encoded.ids).index("<image>")
    assert (
        encoded.ids[image_start : image_start + 16]
        == [lvlm.image_token_id] * 16
        == [lvlm.image_token_id] * lvlm.n_image_tokens
    )
    assert encoded.prefix_len == image_start + 16  # the shared prefix ends with the image block


def test_release_text_spacing():
    assert release_text(" USER:", "text", "image") == " USER: "
    assert release_text("\nIs", "image", "concept") == " \nIs"
    assert release_text("?", "concept", None) == " ?"
    assert release_text("   in this", "concept", "concept") == " in this"
    assert release_text("'s", "concept", "text") == " 's"
    assert release_text(".", "soft", "text") == "."  # after soft tokens: as it is
    assert release_text("A chat", "bos", "concept") == "A chat"
    assert release_text(" ", "text", "concept") == "" and release_text(" and ", "concept", "concept") == " and"


def test_text_only_question_starting_with_a_concept(engine, people):
    lvlm = engine.load_lvlm()
    encoded = lvlm.prepare([LvlmRequest(None, "<sks> is smiling?", people[:1])])[0]
    pieces = _pieces(lvlm, encoded, ["Susan"])
    # no lone "▁" before the concept token (the release strips the space before an added token)
    assert pieces[-7:] == [".", "▁USER:", "[Susan]", "▁is", "▁smiling", "?", "▁ASSISTANT:"]


def test_answers_and_options_continue_the_prompt(engine, people, photos):
    lvlm = engine.load_lvlm()
    susan = people[:1]
    lvlm.prepare([LvlmRequest(photos[0], "Is <sks> in this photo?", susan)])  # registers Susan's tokens

    def option(text):
        ids, _ = lvlm.encode_segments(answer_segments(text, ["Susan"]))
        return _pieces(lvlm, type("E", (), {"ids": ids})(), ["Susan"])

    assert option("<sks>") == ["[Susan]"]  # the release's options "<sks>" and "the person next to <sks>"
    assert option("the person next to <sks>") == ["▁the", "▁p", "ers", "on", "▁", "n", "e", "x", "t", "▁to", "[Susan]"]
    assert option("Yes, <sks> is in this photo.") == ["▁Yes", ",", "[Susan]", "▁is", "▁in", "▁this", "▁photo", "."]
    assert option("No") == ["▁No"] and lvlm.tokenizer.convert_tokens_to_ids("▁No") == lvlm.no_id


def test_text_only_prompt_has_no_image_block(engine, people):
    lvlm = engine.load_lvlm()
    encoded = lvlm.prepare([LvlmRequest(None, "Who is <sks>?", people[:1])])[0]
    assert encoded.prefix_len == 0 and lvlm.image_token_id not in encoded.ids
    pieces = _pieces(lvlm, encoded, ["Susan"])
    assert pieces[-8:] == ["[Susan~15]", ".", "▁USER:", "▁Who", "▁is", "[Susan]", "▁?", "▁ASSISTANT:"]
