"""Shared-prompt-prefix KV reuse (tiny random bundle): same greedy output as the plain path.

The caption and every question about one photo share [BOS][system][concepts][USER: image]; with
reuse that prefix is prefilled once per (photo, people) and each prompt continues from a copy of
its cache. These tests compare it with the plain left-padded path on several photos, different
people, several questions, and batch limits that split and pack the groups.
"""

from __future__ import annotations

import pytest
import torch

from pipeline.config import DEFAULT_QUESTIONS
from pipeline.plvm.embeddings import ConceptEmbedding, Person
from pipeline.plvm.lvlm import LvlmRequest, _pack, _prefix_groups
from pipeline.plvm.prompts import CAPTION_QUESTION

QUESTIONS = [CAPTION_QUESTION, *DEFAULT_QUESTIONS, "Is Zoe next to Liam?"]
MAX_NEW = 10


@pytest.fixture(scope="module")
def lvlm(engine):
    return engine.load_lvlm()


@pytest.fixture(scope="module")
def softened(people):
    """The enrolled people under new names with a smaller LM-head row, so random-weight generation
    is not just the concept token repeated and the continuations actually differ across prompts."""
    return [
        Person(name, ConceptEmbedding(p.concept.tokens, 0.15 * p.concept.lm_weight))
        for name, p in zip(["Zoe", "Liam", "Noah"], people, strict=True)
    ]


def _requests(photos, people, softened):
    """4 photos x 5 prompts; present people: 1 (real concept), 2, none, 3 (softened)."""
    present = [[people[0]], softened[:2], [], softened]
    out = []
    for photo, who in zip(photos, present, strict=True):
        for q in QUESTIONS:
            if "Zoe" in q and not {"Zoe", "Liam"} <= {p.name for p in who}:
                q = "Describe the photo."
            out.append(LvlmRequest(photo, q, who))
    return out


def _assert_same(plain, reused):
    assert [g.ids for g in plain] == [g.ids for g in reused]
    for a, b in zip(plain, reused, strict=True):
        finite = torch.isfinite(a.first_logits)
        assert torch.equal(finite, torch.isfinite(b.first_logits))  # same concept mask
        assert torch.allclose(a.first_logits[finite], b.first_logits[finite], atol=1e-4, rtol=0)


def test_reuse_gives_the_same_tokens_and_first_logits(lvlm, people, softened, photos):
    requests = _requests(photos, people, softened)
    plain = lvlm.generate_tokens(requests, MAX_NEW, reuse_prefix=False, first_logits=True)
    reused = lvlm.generate_tokens(requests, MAX_NEW, reuse_prefix=True, first_logits=True)
    _assert_same(plain, reused)
    assert len({tuple(g.ids) for g in plain}) >= 8  # the comparison is not between constant outputs


@pytest.mark.parametrize("max_batch", [2, 3, 7])
def test_reuse_with_groups_split_and_packed(lvlm, people, softened, photos, max_batch):
    requests = _requests(photos, people, softened)
    plain = lvlm.generate_tokens(requests, MAX_NEW, reuse_prefix=False, first_logits=True)
    old = lvlm.max_batch
    lvlm.max_batch = max_batch
    try:
        reused = lvlm.generate_tokens(requests, MAX_NEW, reuse_prefix=True, first_logits=True)
    finally:
        lvlm.max_batch = old
    _assert_same(plain, reused)


def test_mixed_batch_text_only_and_single_prompts_take_the_plain_path(lvlm, people, softened, photos):
    requests = [
        LvlmRequest(None, "Who is Zoe?", softened[:1]),  # text only: no image prefix
        LvlmRequest(photos[1], "Where was this photo taken?", softened[1:2]),  # alone: nothing to share
        LvlmRequest(photos[0], CAPTION_QUESTION, softened[:2]),
        LvlmRequest(photos[0], "Who is in this photo?", softened[:2]),
        LvlmRequest(photos[0], "Who is in this photo?", softened[1:]),  # same photo, other people
        LvlmRequest(photos[0], "What are the people doing?", softened[:2]),
    ]
    encoded = lvlm.prepare(requests)
    assert _prefix_groups(requests, encoded, 16) == [[2, 3, 5]]
    plain = lvlm.generate_tokens(requests, MAX_NEW, reuse_prefix=False, first_logits=True)
    reused = lvlm.generate_tokens(requests, MAX_NEW, reuse_prefix=True, first_logits=True)
    _assert_same(plain, reused)


def test_reuse_encodes_each_photo_once_and_feeds_fewer_tokens(lvlm, softened, photos):
    requests = [LvlmRequest(photo, q, softened[:2]) for photo in photos[:2] for q in QUESTIONS]
    vision, tokens = [], []
    hooks = [
        lvlm.model.model.vision_tower.register_forward_hook(lambda m, i, o: vision.append(i[0].shape[0])),
        lvlm.model.model.language_model.register_forward_pre_hook(
            lambda m, a, kw: tokens.append(tuple(kw["inputs_embeds"].shape[:2])),
            with_kwargs=True,
        ),
    ]
    try:
        lvlm.generate_tokens(requests, 1, reuse_prefix=True)
        reused_vision, reused_tokens = list(vision), list(tokens)
        vision.clear(), tokens.clear()
        lvlm.generate_tokens(requests, 1, reuse_prefix=False)
    finally:
        for hook in hooks:
            hook.remove()
    assert reused_vision == [2]  # one vision pass, one image per photo
    encoded = lvlm.prepare(requests)
    prefix = encoded[0].prefix_len
    # prefill: (2 photos, prefix); continuation: (10 prompts, tail) -- never the image block again
    assert reused_tokens[0] == (2, prefix)
    assert reused_tokens[1][0] == len(requests) and reused_tokens[1][1] < prefix
    fed = lambda shapes: sum(b * t for b, t in shapes)  # noqa: E731
    assert fed(reused_tokens) < fed(tokens) / 2


def test_engine_describe_same_with_flag_on_and_off(engine, softened, photos):
    assert engine.reuse_prefix is True  # on by default
    present = [softened[:1], softened, []]
    try:
        on = engine.describe(photos[:3], present, list(DEFAULT_QUESTIONS))
        engine.reuse_prefix = False
        off = engine.describe(photos[:3], present, list(DEFAULT_QUESTIONS))
    finally:
        engine.reuse_prefix = True
    assert on == off
    assert all(set(d.answers) == set(DEFAULT_QUESTIONS) for d in on)


def test_pack_keeps_groups_whole_and_under_the_limit():
    groups = [[0, 1, 2], [3, 4], [5, 6, 7, 8], [9, 10]]
    assert _pack(groups, 5) == [[[0, 1, 2], [3, 4]], [[5, 6, 7, 8]], [[9, 10]]]
    assert _pack(groups, 4) == [[[0, 1, 2]], [[3, 4]], [[5, 6, 7, 8]], [[9, 10]]]
