"""LLaVA with concept rows (tiny random bundle): masking, forced concept generation, batching."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.plvm.embeddings import ConceptEmbedding, Person
from pipeline.plvm.lvlm import LvlmRequest
from pipeline.plvm.prompts import RECOGNITION_QUESTION


@pytest.fixture(scope="module")
def lvlm(engine):
    return engine.load_lvlm()


def _forced(lvlm, person: Person, request: LvlmRequest, scale: float = 1e3) -> Person:
    """``person`` with an LM-head row aligned to the prompt's last hidden state, so its token wins."""
    h = lvlm.last_hidden_states([request])[0]
    return Person(person.name, ConceptEmbedding(person.concept.tokens, scale * h / h.norm()))


def test_forced_concept_token_decodes_to_name(lvlm, people, photos):
    susan = people[0]
    request = LvlmRequest(photos[0], "Who is in this photo?", [susan])
    forced = _forced(lvlm, susan, request)
    (text,) = lvlm.generate([LvlmRequest(photos[0], "Who is in this photo?", [forced])], max_new_tokens=3)
    assert text.startswith("Susan") and "<" not in text


def test_other_rows_cannot_generate_a_concept_not_in_their_prompt(lvlm, people, photos):
    susan, mike = people[0], people[1]
    with_susan = LvlmRequest(photos[0], "Who is in this photo?", [susan])
    forced = _forced(lvlm, susan, with_susan)
    # Row 2 only introduces Mike; Susan's huge LM-head row is shared but masked there.
    rows = [
        LvlmRequest(photos[0], "Who is in this photo?", [forced]),
        LvlmRequest(photos[0], "Who is in this photo?", [mike]),
    ]
    texts = lvlm.generate(rows, max_new_tokens=4)
    assert texts[0].startswith("Susan")
    assert "Susan" not in texts[1]


def test_logit_bias_masks_soft_tokens_and_absent_people(lvlm, people, photos):
    susan, mike = people[0], people[1]
    lvlm.prepare([LvlmRequest(photos[0], "Is Susan with Mike?", [susan, mike])])
    s, m = lvlm.bank.ids("Susan"), lvlm.bank.ids("Mike")
    bias = lvlm.bank.logit_bias([[s.concept], []], torch.device("cpu"))
    assert bias.shape == (2, lvlm.model.get_output_embeddings().weight.shape[0])
    assert bias[0, s.concept] == 0 and torch.isinf(bias[0, m.concept]) and torch.isinf(bias[0, list(s.soft)]).all()
    assert (
        torch.isinf(bias[1, s.concept])
        and bias[:, lvlm.yes_id].eq(0).all()
        and bias[:, : lvlm.bank.base_vocab].eq(0).all()
    )
    logp = lvlm.next_token_logprobs([LvlmRequest(photos[0], RECOGNITION_QUESTION, [susan])])[0]
    assert torch.isinf(logp[list(s.soft)]).all() and torch.isinf(logp[m.concept])


def test_concept_rows_hold_aligner_outputs(lvlm, people, photos):
    susan = people[0]
    lvlm.prepare([LvlmRequest(photos[0], RECOGNITION_QUESTION, [susan])])
    ids = lvlm.bank.ids("Susan")
    emb, head = lvlm.model.get_input_embeddings().weight, lvlm.model.get_output_embeddings().weight
    torch.testing.assert_close(emb[ids.concept], susan.concept.tokens[0])
    torch.testing.assert_close(emb[list(ids.soft)], susan.concept.tokens[1:])
    torch.testing.assert_close(head[ids.concept], susan.concept.lm_weight)
    assert head[list(ids.soft)].eq(0).all()


def test_batched_scores_equal_one_at_a_time(lvlm, people, photos):
    susan, mike, anna = people
    requests = [
        LvlmRequest(photos[0], RECOGNITION_QUESTION, [susan]),
        LvlmRequest(photos[1], "Is Susan standing with Mike?", [susan, mike]),
        LvlmRequest(photos[2], "Who is in this photo?", [anna, mike, susan]),
        LvlmRequest(None, "Is <sks> smiling?", [anna]),
        LvlmRequest(photos[0], RECOGNITION_QUESTION, [mike]),
    ]
    assert len({len(e.ids) for e in lvlm.prepare(requests)}) >= 3  # real left padding
    batched = np.array(lvlm.yes_probability(requests))
    single = np.array([lvlm.yes_probability([r])[0] for r in requests])
    np.testing.assert_allclose(batched, single, atol=1e-4, rtol=0)
    assert np.ptp(single) > 1e-4  # the rows really differ
    full_b = lvlm.next_token_logprobs(requests)
    full_s = torch.cat([lvlm.next_token_logprobs([r]) for r in requests])
    finite = torch.isfinite(full_s)
    assert torch.equal(finite, torch.isfinite(full_b))
    torch.testing.assert_close(full_b[finite], full_s[finite], atol=1e-4, rtol=0)


def test_option_loglik_is_consistent_with_next_token(lvlm, people, photos):
    request = LvlmRequest(photos[0], RECOGNITION_QUESTION, [people[0]])
    yes, no, susan, sentence = lvlm.option_loglik(request, ["Yes", "No", "Susan", "Yes, Susan is in the park."])
    logp = lvlm.next_token_logprobs([request])[0]
    assert yes == pytest.approx(logp[lvlm.yes_id].item(), abs=1e-4)
    assert no == pytest.approx(logp[lvlm.no_id].item(), abs=1e-4)
    assert susan == pytest.approx(logp[lvlm.bank.ids("Susan").concept].item(), abs=1e-4)  # names -> concept token
    assert sentence < yes  # more tokens, each log-prob < 0
    alone = lvlm.option_loglik(request, ["Yes, Susan is in the park."])[0]
    assert alone == pytest.approx(sentence, abs=1e-4)


def test_one_vision_pass_per_photo(lvlm, people, photos):
    calls = []
    hook = lvlm.model.model.vision_tower.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    try:
        lvlm.yes_probability([LvlmRequest(photos[3], RECOGNITION_QUESTION, [p]) for p in people])
    finally:
        hook.remove()
    assert calls == [1]


def test_rows_are_reused_and_grown_without_losing_concepts(lvlm, people, photos):
    susan = people[0]
    request = LvlmRequest(photos[0], RECOGNITION_QUESTION, [susan])
    before = lvlm.yes_probability([request])[0]
    ptr = lvlm.model.get_input_embeddings().weight.data_ptr()
    lvlm.yes_probability([request])
    assert lvlm.model.get_input_embeddings().weight.data_ptr() == ptr  # known names: no matrix copy
    rows = lvlm.model.get_input_embeddings().weight.shape[0]
    crowd = [Person(f"Guest{i}", susan.concept) for i in range(40)]  # 40 * 17 rows > the grow step
    lvlm.yes_probability([LvlmRequest(photos[1], RECOGNITION_QUESTION, [p]) for p in crowd])
    assert lvlm.model.get_input_embeddings().weight.shape[0] > rows
    assert lvlm.model.get_output_embeddings().weight.shape[0] == lvlm.model.get_input_embeddings().weight.shape[0]
    assert lvlm.yes_probability([request])[0] == pytest.approx(before, abs=1e-5)
    ids = [lvlm.bank.ids(p.name).concept for p in crowd]
    assert len(set(ids)) == 40 and lvlm.bank.ids("Susan").concept not in ids


def test_same_name_with_two_concepts_in_one_batch_is_an_error(lvlm, people, photos):
    impostor = Person("Susan", people[1].concept)
    with pytest.raises(ValueError, match="<Susan>"):
        lvlm.yes_probability(
            [
                LvlmRequest(photos[0], RECOGNITION_QUESTION, [people[0]]),
                LvlmRequest(photos[0], RECOGNITION_QUESTION, [impostor]),
            ]
        )


def test_concept_of_wrong_width_is_rejected(lvlm, photos):
    wrong = Person("Zed", ConceptEmbedding(torch.zeros(17, 63), torch.zeros(63)))
    with pytest.raises(ValueError, match=r"expects \(17, 64\)"):
        lvlm.yes_probability([LvlmRequest(photos[0], RECOGNITION_QUESTION, [wrong])])
