"""The release's token ids with LLaVA-1.5's LLaMA tokenizer, and a check of our prompts against them.

The released code builds ``... USER: <image>\\nIs <sks> in this photo? ASSISTANT:`` into these 68
positions (the image block counted once; ``C`` the concept token, ``S`` one of its 16 soft tokens)::

    <s> ▁A ▁chat … ▁questions . [C] ▁is [S×16] . ▁US ER : ▁ [IMG] ▁ <0x0A> Is [C] ▁in ▁this ▁photo ? ▁A SS IST ANT :

:func:`check_release_ids` asks an :class:`~pipeline.plvm.lvlm.Lvlm` (any weights; only its tokenizer
matters) for these prompts and answers and lists every difference. Used by
``tests/plvm/test_real_tokenizer.py`` (LLaMA's vocabulary rebuilt offline) and ``bench/gpu_check.py``
(the tokenizer of the real weights).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline.plvm.lvlm import Lvlm

CONCEPT, SOFT, IMAGE = "C", "S", "IMG"
Symbolic = list[int | str]

YES, NO, SPACE = 3869, 1939, 29871  # ▁Yes, ▁No, the lone ▁
SYSTEM_IDS: tuple[int, ...] = (
    *(319, 13563, 1546, 263, 12758, 1404, 322, 385, 23116, 21082, 20255, 29889, 450, 20255, 4076),
    *(8444, 29892, 13173, 29892, 322, 1248, 568, 6089, 304, 278, 1404, 29915, 29879, 5155, 29889),
)
ASSISTANT_IDS: tuple[int, ...] = (319, 1799, 9047, 13566, 29901)  # ▁A SS IST ANT :
_CLAUSE: Symbolic = [CONCEPT, 338, *[SOFT] * 16, 29889]  # [C] ▁is [S×16] .
_IMAGE_BLOCK: Symbolic = [3148, 1001, 29901, SPACE, IMAGE, SPACE, 13, 3624]  # ▁US ER : ▁ [IMG] ▁ <0x0A> Is
_QUESTION: Symbolic = [CONCEPT, 297, 445, 15373, 29973, *ASSISTANT_IDS]  # [C] ▁in ▁this ▁photo ? ▁A SS IST ANT :
RECOGNITION_IDS: Symbolic = [1, *SYSTEM_IDS, *_CLAUSE, *_IMAGE_BLOCK, *_QUESTION]
#: question -> its ids after ``<0x0A>`` up to " ASSISTANT:" (text after a concept token starts with ▁)
QUESTION_TAILS: dict[str, Symbolic] = {
    "What is <sks>'s shirt?": [5618, 338, CONCEPT, 525, 29879, 528, 2728, 29973],  # What ▁is [C] ▁' s ▁sh irt ?
    "Where is <sks>?": [11921, 338, CONCEPT, 1577],  # Where ▁is [C] ▁?
}
#: answer (as generated after "ASSISTANT:") -> its ids
ANSWERS: dict[str, Symbolic] = {
    "Yes, <sks> is in this photo.": [YES, 29892, CONCEPT, 338, 297, 445, 15373, 29889],
    "No": [NO],
    "<sks>": [CONCEPT],
}


def symbolic(lvlm: Lvlm, ids: Sequence[int], name: str = "sks") -> Symbolic:
    """ids with ``name``'s concept token as C, its soft tokens as S and the image block as one IMG."""
    mine = lvlm.bank.ids(name)
    out: Symbolic = []
    for i in ids:
        if i == lvlm.image_token_id:
            if out[-1:] != [IMAGE]:
                out.append(IMAGE)
        else:
            out.append(CONCEPT if i == mine.concept else SOFT if i in mine.soft else i)
    return out


def check_release_ids(lvlm: Lvlm) -> list[str]:
    """Differences between our ids and the release's (empty: identical). Registers a random concept
    ``sks`` in ``lvlm`` (its rows are rewritten by every later request)."""
    import torch
    from PIL import Image

    from pipeline.plvm.embeddings import ConceptEmbedding, Person
    from pipeline.plvm.lvlm import LvlmRequest
    from pipeline.plvm.prompts import RECOGNITION_QUESTION, answer_segments

    n_tokens = 1 + (lvlm.bank.n_soft if lvlm.bank.n_soft is not None else 16)
    sks = Person("sks", ConceptEmbedding(torch.randn(n_tokens, lvlm.hidden_size), torch.randn(lvlm.hidden_size)))
    problems: list[str] = []
    if (lvlm.yes_id, lvlm.no_id) != (YES, NO):
        problems.append(f"yes/no ids are {(lvlm.yes_id, lvlm.no_id)}, the release's are {(YES, NO)}")
    photo = Image.new("RGB", (48, 32))
    got = symbolic(lvlm, lvlm.prepare([LvlmRequest(photo, RECOGNITION_QUESTION, [sks])])[0].ids)
    if got != RECOGNITION_IDS:
        problems.append(f"recognition prompt: ours {got} ({len(got)} positions), release {RECOGNITION_IDS} (68)")
    for question, tail in QUESTION_TAILS.items():
        got = symbolic(lvlm, lvlm.prepare([LvlmRequest(photo, question, [sks])])[0].ids)
        expected = [*tail, *ASSISTANT_IDS]
        if got[-len(expected) :] != expected:
            problems.append(f"{question!r}: ours ends {got[-len(expected) :]}, release {expected}")
    for answer, expected in ANSWERS.items():
        got = symbolic(lvlm, lvlm.encode_segments(answer_segments(answer, ["sks"]))[0])
        if got != expected:
            problems.append(f"answer {answer!r}: ours {got}, release {expected}")
    return problems
