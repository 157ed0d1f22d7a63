"""Prompt rendering and the exact token layout of docs/plvm.md, for one and for three people."""

from __future__ import annotations

import pytest

from pipeline.plvm.lvlm import LvlmRequest
from pipeline.plvm.prompts import SYSTEM_PROMPT, concept_token, render_question, soft_tokens, tokens_to_names


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


def _layout(lvlm, people, question, image):
    encoded = lvlm.prepare([LvlmRequest(image, question, people)])[0]
    return encoded, lvlm.tokenizer.convert_ids_to_tokens(encoded.ids)


def _expected_prefix(lvlm, names):
    tok = lvlm.tokenizer
    expected = ["<s>", *tok.tokenize(SYSTEM_PROMPT)]
    for name in names:
        expected += [f"<{name}>", "▁is", *[f"<{name}_soft_{i}>" for i in range(16)], "."]
    return expected


@pytest.mark.parametrize(
    "names, question, question_tokens",
    [
        (["Susan"], "Is <sks> in this photo?", ["\nIs", "<Susan>", "▁in▁this▁photo?▁ASSISTANT:"]),
        (
            ["Susan", "Mike", "Anna"],
            "Is Susan with mike and Anna?",
            ["\nIs", "<Susan>", "▁with", "<Mike>", "▁and", "<Anna>", "?▁ASSISTANT:"],
        ),
    ],
)
def test_token_layout_matches_spec(engine, people, photos, names, question, question_tokens):
    lvlm = engine.load_lvlm()
    chosen = [p for n in names for p in people if p.name == n]
    encoded, tokens = _layout(lvlm, chosen, question, photos[0])

    # [BOS][system][<name>]["is"][16 soft]["."] per person
    prefix = _expected_prefix(lvlm, names)
    assert tokens[: len(prefix)] == prefix
    # [USER:][image x N]
    image_start = tokens.index("<image>")
    assert "".join(tokens[len(prefix) : image_start]) == "▁USER:"
    assert (
        tokens[image_start : image_start + lvlm.n_image_tokens] == ["<image>"] * lvlm.n_image_tokens == ["<image>"] * 16
    )
    assert encoded.prefix_len == image_start + 16
    # [question with concept tokens][ASSISTANT:] -- text runs compared as strings, concept tokens exactly
    rest, grouped, run = tokens[encoded.prefix_len :], [], ""
    for t in rest:
        if t.startswith("<") and t.endswith(">") and len(t) > 1:
            grouped += [run, t] if run else [t]
            run = ""
        else:
            run += t
    grouped.append(run)
    assert grouped == question_tokens
    assert sum(t.startswith("<") and "_soft_" in t for t in tokens) == 16 * len(names)


def test_text_only_prompt_has_no_image_block(engine, people):
    lvlm = engine.load_lvlm()
    encoded, tokens = _layout(lvlm, people[:1], "Who is <sks>?", None)
    assert "<image>" not in tokens and encoded.prefix_len == 0
    prefix = _expected_prefix(lvlm, ["Susan"])
    assert "".join(tokens[len(prefix) :]) == "▁USER:▁Who▁is<Susan>?▁ASSISTANT:"
