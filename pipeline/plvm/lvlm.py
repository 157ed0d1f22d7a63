"""LLaVA-1.5 (transformers ``LlavaForConditionalGeneration``) with PLVM concept tokens.

Every entry point takes a batch of :class:`LvlmRequest` (photo or None, question, people whose
concepts are introduced in the system prompt), writes the people's rows once per batch
(:class:`~pipeline.plvm.concepts.ConceptBank`), builds ids segment by segment
(:mod:`pipeline.plvm.prompts`), and runs left-padded batches of at most ``max_batch`` rows.

Images: LLaVA-1.5 "pad" (expand to square with the processor's mean colour), then the processor's
PIL backend. Each distinct image object is encoded by the vision tower once per batch and passed
as ``mm_encoder_outputs``, so asking about n people on one photo costs one vision pass.

Prefix reuse (:meth:`Lvlm.generate_tokens`, on by default, ``reuse_prefix=False`` turns it off):
:class:`EncodedPrompt` records ``prefix_len``, the ids through the image block
(``[BOS][system][concepts][USER:][image]``) that every prompt about the same photo and people
shares. Requests with the same photo object and the same prefix ids form a group; each group's
prefix is prefilled ONCE (groups batched, left-padded) into a ``DynamicCache``, the cache rows are
repeated for the group's prompts, and generation continues from the cache with only the prompt
tails (``"\n" question " ASSISTANT:"``) to encode: the image is encoded and attended-in once per
photo instead of once per prompt. Rows look like ``[pad][prefix][pad][tail]``; position ids count
real tokens only, so results equal the plain left-padded path (same greedy tokens, logits within
float tolerance). Single-prompt groups and text-only prompts take the plain path.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from PIL import Image

from pipeline.plvm.batching import chunks, image_feature_inputs, left_pad
from pipeline.plvm.concepts import ConceptBank
from pipeline.plvm.embeddings import ConceptEmbedding, Person
from pipeline.plvm.errors import PlvmError
from pipeline.plvm.prompts import (
    Segment,
    answer_segments,
    concept_token,
    prompt_segments,
    release_text,
    tokens_to_names,
)
from pipeline.plvm.transforms import expand_to_square

if TYPE_CHECKING:
    from transformers import LlavaForConditionalGeneration, ProcessorMixin


@dataclass
class LvlmRequest:
    """One prompt: ``question`` about ``image`` (None: text only) with ``people`` introduced in order."""

    image: Image.Image | None
    question: str
    people: Sequence[Person] = ()


@dataclass
class EncodedPrompt:
    """Token ids of one request. ids[:prefix_len] is the shareable prefix (BOS .. image block)."""

    ids: list[int]
    prefix_len: int
    names: dict[int, str] = field(default_factory=dict)  # concept token id -> display name


@dataclass
class Generated:
    """Greedy output of one request: new token ids (through EOS or padding) and, when asked for, the
    float32 (V,) logits of the first generated token with the concept mask applied."""

    ids: list[int]
    first_logits: torch.Tensor | None = None


class _AddBias:
    """LogitsProcessor adding a fixed (B, V) bias (0 / -inf) to each step's scores."""

    def __init__(self, bias: torch.Tensor) -> None:
        self.bias = bias

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        return scores + self.bias.to(scores.dtype)


class Lvlm:
    """A loaded LLaVA-1.5 plus tokenizer, image processor and concept rows."""

    def __init__(
        self,
        model: LlavaForConditionalGeneration,
        processor: ProcessorMixin,
        n_soft: int | None = None,
        max_batch: int = 16,
    ) -> None:
        """Wrap a loaded model/processor. n_soft: soft tokens per concept (None: from the first concept)."""
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = processor.tokenizer
        self.image_processor = processor.image_processor
        self.max_batch = max_batch
        cfg = model.config
        text_config = cfg.text_config
        assert text_config is not None and not isinstance(text_config, dict)  # LlavaConfig builds it as a config
        self.hidden_size: int = text_config.hidden_size
        self.image_token_id: int = cfg.image_token_id
        self.n_image_tokens = _count_image_tokens(cfg, self.image_processor)
        self.pad_fill = tuple(int(m * 255) for m in self.image_processor.image_mean)
        self.bank = ConceptBank(model, self.tokenizer, n_soft)
        self.pad_id = (
            self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        )
        self._sentinel = self.tokenizer("\n", add_special_tokens=False).input_ids
        self.yes_id = self._text_ids(" Yes")[0]
        self.no_id = self._text_ids(" No")[0]
        self._skip = {
            i
            for i in (self.tokenizer.bos_token_id, self.pad_id, self.image_token_id, self.tokenizer.unk_token_id)
            if i is not None
        }

    @classmethod
    def load(
        cls,
        folder: Path,
        device: torch.device,
        dtype: torch.dtype,
        load_in_8bit: bool = False,
        n_soft: int | None = None,
        max_batch: int = 16,
    ) -> Lvlm:
        """Load processor + model from a local folder (local_files_only). Side effect: weights to ``device``."""
        from transformers import AutoProcessor, LlavaForConditionalGeneration

        processor = AutoProcessor.from_pretrained(folder, local_files_only=True, backend="pil")
        kwargs: dict = {"local_files_only": True, "dtype": dtype}
        if load_in_8bit:
            kwargs.update(quantization_config=_int8_config(device), device_map={"": device})
        model = LlavaForConditionalGeneration.from_pretrained(folder, **kwargs)
        if not load_in_8bit:
            model = model.to(device)  # type: ignore[arg-type]  # @wraps on PreTrainedModel.to hides self from mypy
        return cls(model, processor, n_soft=n_soft, max_batch=max_batch)

    @property
    def device(self) -> torch.device:
        return self.model.get_input_embeddings().weight.device

    # Encoding ---------------------------------------------------------------------------------
    def _text_ids(self, text: str, first: bool = False) -> list[int]:
        """Ids of ``text``; unless ``first``, as a continuation (no implicit leading space): a
        leading "\\n" sentinel is encoded and cut off again."""
        if first:
            return self.tokenizer(text, add_special_tokens=False).input_ids
        ids = self.tokenizer("\n" + text, add_special_tokens=False).input_ids
        n = len(self._sentinel)
        return ids[n:] if ids[:n] == self._sentinel else self.tokenizer(text, add_special_tokens=False).input_ids

    def encode_segments(self, segments: Sequence[Segment]) -> tuple[list[int], int]:
        """Segments -> (ids, prefix_len), laid out as the release does (:func:`release_text`).
        Concept names must be registered (``bank.write``) first. ``segments`` may also be an answer
        continuation alone (:func:`answer_segments`): its first text is then a continuation too."""
        ids: list[int] = []
        prefix_len = 0
        for i, seg in enumerate(segments):
            if seg.kind == "bos":
                ids.append(self.tokenizer.bos_token_id)
            elif seg.kind == "text":
                previous = segments[i - 1].kind if i else None
                following = segments[i + 1].kind if i + 1 < len(segments) else None
                ids += self._text_ids(release_text(seg.text, previous, following), first=previous == "bos")
            elif seg.kind == "concept":
                ids.append(self.bank.ids(seg.name).concept)
            elif seg.kind == "soft":
                ids += self.bank.ids(seg.name).soft
            else:
                ids += [self.image_token_id] * self.n_image_tokens
                prefix_len = len(ids)
        return ids, prefix_len

    def prepare(self, requests: Sequence[LvlmRequest]) -> list[EncodedPrompt]:
        """Write every person's rows (once per name, for the whole call, so the vocabulary width is
        fixed before any forward pass) and encode each request."""
        concepts: dict[str, ConceptEmbedding] = {}
        for request in requests:
            for person in request.people:
                _add_unique(concepts, person)
        names = self.bank.write(concepts)
        encoded = []
        for request in requests:
            ids, prefix_len = self.encode_segments(
                prompt_segments(
                    request.question, [p.name for p in request.people], with_image=request.image is not None
                )
            )
            concept_ids = [self.bank.ids(p.name).concept for p in request.people]
            encoded.append(EncodedPrompt(ids, prefix_len, {i: names[i] for i in concept_ids}))
        return encoded

    def encode_images(self, images: Sequence[Image.Image]) -> list[torch.Tensor]:
        """Photos -> projected image features, one (n_image_tokens, hidden) tensor per photo, in the
        model's dtype on its device: LLaVA "pad", the image processor, vision tower + projector.
        The rows that replace the image placeholder tokens (also used by Aligner training)."""
        squares = [expand_to_square(im, self.pad_fill) for im in images]
        pixel_values = self.image_processor(images=squares, return_tensors="pt")["pixel_values"]  # (U, 3, S, S)
        pixel_values = pixel_values.to(self.device, self.model.dtype)
        return list(self.model.get_image_features(pixel_values=pixel_values, return_dict=True).pooler_output)

    def _image_inputs(self, images: Sequence[Image.Image | None]) -> dict[str, Any]:
        """``mm_encoder_outputs`` for rows with an image; each distinct image object encoded once."""
        index: dict[int, int] = {}
        unique: list[Image.Image] = []
        for im in images:
            if im is not None and id(im) not in index:
                index[id(im)] = len(unique)
                unique.append(im)
        if not unique:
            return {}
        features = self.encode_images(unique)  # U x (N, H)
        return image_feature_inputs([features[index[id(im)]] if im is not None else None for im in images])

    def _batch(
        self,
        requests: Sequence[LvlmRequest],
        encoded: Sequence[EncodedPrompt],
        tails: Sequence[Sequence[int]] | None = None,
    ):
        """(model inputs, position_ids (b, T), logit bias (b, V)) for one chunk of prepared requests."""
        rows = [e.ids + list(tails[i]) if tails else e.ids for i, e in enumerate(encoded)]
        input_ids, attention_mask, position_ids = left_pad(rows, self.pad_id, self.device)
        inputs = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            **self._image_inputs([r.image for r in requests]),
        }
        bias = self.bank.logit_bias([e.names.keys() for e in encoded], self.device)
        return inputs, position_ids, bias

    def _chunks(self, requests: Sequence[LvlmRequest]):
        """Prepare all requests, then yield (requests, encoded) chunks of at most max_batch."""
        encoded = self.prepare(requests)
        for start in range(0, len(requests), self.max_batch):
            yield requests[start : start + self.max_batch], encoded[start : start + self.max_batch]

    # Scoring ----------------------------------------------------------------------------------
    @torch.inference_mode()
    def last_hidden_states(self, requests: Sequence[LvlmRequest]) -> torch.Tensor:
        """Final-layer hidden state at each prompt's last position, float32 (B, hidden)."""
        out = []
        for chunk, encoded in self._chunks(requests):
            inputs, position_ids, _ = self._batch(chunk, encoded)
            hidden = self.model.model(
                **inputs, position_ids=position_ids, use_cache=False
            ).last_hidden_state  # (b, T, H)
            out.append(hidden[:, -1].float())
        return torch.cat(out)

    @torch.inference_mode()
    def next_token_logprobs(self, requests: Sequence[LvlmRequest]) -> torch.Tensor:
        """log P(next token) after each prompt, concept mask applied, float32 (B, V)."""
        out = []
        for chunk, encoded in self._chunks(requests):
            inputs, position_ids, bias = self._batch(chunk, encoded)
            logits = self.model(**inputs, position_ids=position_ids, logits_to_keep=1, use_cache=False).logits[
                :, -1
            ]  # (b, V)
            out.append(torch.log_softmax(logits.float() + bias, dim=-1))
        return torch.cat(out)

    def yes_probability(self, requests: Sequence[LvlmRequest]) -> list[float]:
        """P("Yes") / (P("Yes") + P("No")) at the first answer position of each request."""
        logp = self.next_token_logprobs(requests)
        pair = logp[:, [self.yes_id, self.no_id]]  # (B, 2)
        return torch.softmax(pair, dim=-1)[:, 0].tolist()

    @torch.inference_mode()
    def option_loglik(self, request: LvlmRequest, options: Sequence[str]) -> list[float]:
        """Sum of log P(option tokens | prompt) for each option (names in options become concept tokens)."""
        names = [p.name for p in request.people]
        (encoded,) = self.prepare([request])  # also registers the people's tokens used by the options
        tails = [self.encode_segments(answer_segments(option, names))[0] for option in options]
        if any(not t for t in tails):
            raise ValueError(f"empty option in {list(options)}")
        scores: list[float] = []
        for part in chunks(tails, self.max_batch):
            inputs, position_ids, bias = self._batch([request] * len(part), [encoded] * len(part), part)
            keep = max(len(t) for t in part) + 1
            logits = self.model(
                **inputs, position_ids=position_ids, logits_to_keep=keep, use_cache=False
            ).logits  # (b, keep, V)
            logp = torch.log_softmax(logits.float() + bias[:, None], dim=-1)
            for row, tail in enumerate(part):
                positions = torch.arange(keep - len(tail) - 1, keep - 1, device=logp.device)  # predict the tail
                targets = torch.tensor(tail, device=logp.device)
                scores.append(logp[row, positions, targets].sum().item())
        return scores

    # Generation -------------------------------------------------------------------------------
    @torch.inference_mode()
    def generate(
        self,
        requests: Sequence[LvlmRequest],
        max_new_tokens: int = 40,
        reuse_prefix: bool = True,
        temperature: float = 0.0,
    ) -> list[str]:
        """Answers, concept tokens decoded to names; soft/other people's tokens never generated.

        reuse_prefix: share one prefilled KV cache per (photo, people) prefix. temperature: 0 decodes
        greedily (the default: the same rows every run); > 0 samples (the release uses 0.2).
        """
        encoded = self.prepare(requests)
        out = self.generate_tokens(requests, max_new_tokens, reuse_prefix, encoded=encoded, temperature=temperature)
        return [self.decode(g.ids, e.names) for g, e in zip(out, encoded, strict=True)]

    @torch.inference_mode()
    def generate_tokens(
        self,
        requests: Sequence[LvlmRequest],
        max_new_tokens: int = 40,
        reuse_prefix: bool = True,
        first_logits: bool = False,
        encoded: Sequence[EncodedPrompt] | None = None,
        temperature: float = 0.0,
    ) -> list[Generated]:
        """New token ids per request (in order; greedy, or sampled when ``temperature`` > 0), and
        with ``first_logits`` the first step's logits (float32 (V,), concept mask applied).
        ``encoded``: from :meth:`prepare` on these requests."""
        from transformers import GenerationConfig

        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        encoded = self.prepare(requests) if encoded is None else encoded
        sampling = {"temperature": temperature, "top_p": 1.0, "top_k": 0} if temperature else {}
        config = GenerationConfig(
            max_new_tokens=max_new_tokens,
            do_sample=temperature > 0,
            **sampling,
            num_beams=1,
            pad_token_id=self.pad_id,
            eos_token_id=self.tokenizer.eos_token_id,
            bos_token_id=self.tokenizer.bos_token_id,
            return_dict_in_generate=True,
            output_logits=first_logits,
        )
        groups = _prefix_groups(requests, encoded, self.max_batch) if reuse_prefix else []
        grouped = {i for group in groups for i in group}
        results: list[Generated | None] = [None] * len(requests)
        plain = [i for i in range(len(requests)) if i not in grouped]
        for part in chunks(plain, self.max_batch):
            inputs, _, bias = self._batch([requests[i] for i in part], [encoded[i] for i in part])
            self._run_generate(part, inputs, {}, bias, config, results)
        for packed in _pack(groups, self.max_batch):
            self._generate_shared(requests, encoded, packed, config, results)
        done = [r for r in results if r is not None]
        assert len(done) == len(results)  # every request is in exactly one plain chunk or one group
        return done

    def _generate_shared(
        self,
        requests: Sequence[LvlmRequest],
        encoded: Sequence[EncodedPrompt],
        groups: Sequence[Sequence[int]],
        config,
        results: list,
    ) -> None:
        """Prefill each group's prefix once (all groups in one left-padded pass), repeat the cache rows
        for the group's prompts, and generate from it with only the tails as new input."""
        heads = [group[0] for group in groups]
        prefixes = [encoded[h].ids[: encoded[h].prefix_len] for h in heads]
        p_ids, p_mask, p_pos = left_pad(prefixes, self.pad_id, self.device)  # (G, P)
        prefill = self.model.model(
            input_ids=p_ids,
            attention_mask=p_mask,
            position_ids=p_pos,
            use_cache=True,
            **self._image_inputs([requests[h].image for h in heads]),
        )
        cache = prefill.cache if getattr(prefill, "cache", None) is not None else prefill.past_key_values
        rows = [i for group in groups for i in group]
        owner = torch.tensor([g for g, group in enumerate(groups) for _ in group], device=self.device)
        cache.batch_select_indices(owner)  # (G, ...) -> (R, ...): new tensors, one row per prompt
        tails = [encoded[i].ids[encoded[i].prefix_len :] for i in rows]
        t_ids, t_mask, _ = left_pad(tails, self.pad_id, self.device)  # (R, T)
        inputs = {  # [pad][prefix][pad][tail]; generate feeds only the columns after the cache
            "input_ids": torch.cat([p_ids[owner], t_ids], dim=1),
            "attention_mask": torch.cat([p_mask[owner], t_mask], dim=1),
        }
        bias = self.bank.logit_bias([encoded[i].names.keys() for i in rows], self.device)
        self._run_generate(rows, inputs, {self._cache_kwarg: cache}, bias, config, results)

    @cached_property
    def _cache_kwarg(self) -> str:
        """Name of the KV-cache argument of the model's forward ("cache" in recent transformers)."""
        return "cache" if "cache" in inspect.signature(self.model.forward).parameters else "past_key_values"

    def _run_generate(self, rows, inputs, extra: dict, bias: torch.Tensor, config, results: list) -> None:
        from transformers import LogitsProcessorList

        out = self.model.generate(
            **inputs, **extra, generation_config=config, logits_processor=LogitsProcessorList([_AddBias(bias)])
        )
        new = out.sequences[:, inputs["input_ids"].shape[1] :].tolist()  # (b, n_new)
        first = (out.logits[0].float() + bias) if out.logits else None  # (b, V)
        for j, i in enumerate(rows):
            results[i] = Generated(new[j], first[j].cpu() if first is not None else None)

    def decode(self, ids: Sequence[int], names: dict[int, str]) -> str:
        """Generated ids -> text: stop at EOS, drop BOS/pad/image ids, concept tokens -> names."""
        keep: list[int] = []
        for token in ids:
            if token == self.tokenizer.eos_token_id:
                break
            if token not in self._skip or token in names:
                keep.append(token)
        text = self.tokenizer.decode(keep, skip_special_tokens=False)
        return tokens_to_names(text, list(names.values())).strip()


def _add_unique(concepts: dict[str, ConceptEmbedding], person: Person) -> None:
    """Add ``person`` to ``concepts`` (by name); one name, or one concept token, means one concept."""
    for name, concept in concepts.items():
        if concept_token(name) == concept_token(person.name):
            same = concept is person.concept or (
                torch.equal(concept.tokens, person.concept.tokens)
                and torch.equal(concept.lm_weight, person.concept.lm_weight)
            )
            if name != person.name or not same:
                raise ValueError(f"two different people share the concept token {concept_token(name)} in one batch")
            return
    concepts[person.name] = person.concept


def _prefix_groups(requests: Sequence[LvlmRequest], encoded: Sequence[EncodedPrompt], max_rows: int) -> list[list[int]]:
    """Indices of requests sharing a prefix (same photo object, same prefix ids, non-empty tail), in
    first-seen order, split into groups of at most ``max_rows``; single-request groups are dropped."""
    found: dict[tuple, list[int]] = {}
    for i, (request, e) in enumerate(zip(requests, encoded, strict=True)):
        if request.image is None or e.prefix_len == 0 or len(e.ids) <= e.prefix_len:
            continue
        found.setdefault((id(request.image), tuple(e.ids[: e.prefix_len])), []).append(i)
    groups = [list(part) for members in found.values() for part in chunks(members, max_rows)]
    return [g for g in groups if len(g) > 1]


def _pack(groups: Sequence[list[int]], max_rows: int) -> list[list[list[int]]]:
    """Consecutive groups packed into batches of at most ``max_rows`` rows (each group <= max_rows)."""
    batches: list[list[list[int]]] = []
    rows = 0
    for group in groups:
        if not batches or rows + len(group) > max_rows:
            batches.append([])
            rows = 0
        batches[-1].append(group)
        rows += len(group)
    return batches


def _count_image_tokens(config, image_processor) -> int:
    """Image placeholder tokens per image: (size / patch)^2, +1 with the "full" feature strategy."""
    vision = config.vision_config
    crop = getattr(image_processor, "crop_size", None) or {}
    crop_side = crop.get("height") if isinstance(crop, dict) else getattr(crop, "height", None)
    if crop_side is not None and crop_side != vision.image_size:
        raise PlvmError(f"image processor crops to {crop_side} px but the vision tower expects {vision.image_size} px")
    n = (vision.image_size // vision.patch_size) ** 2
    return n + 1 if config.vision_feature_select_strategy == "full" else n


def _int8_config(device: torch.device):
    """BitsAndBytesConfig for 8-bit loading, or a PlvmError saying what is missing."""
    if device.type != "cuda":
        raise PlvmError(f"load_in_8bit needs a CUDA device; device is {device}")
    try:
        import bitsandbytes  # noqa: F401  (imported only to check that it is installed)
    except ImportError as exc:
        raise PlvmError("load_in_8bit needs the bitsandbytes package (pip install bitsandbytes accelerate)") from exc
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_8bit=True)
