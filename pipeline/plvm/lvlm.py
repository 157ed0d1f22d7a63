"""LLaVA-1.5 (transformers ``LlavaForConditionalGeneration``) with PLVM concept tokens.

Every entry point takes a batch of :class:`LvlmRequest` (photo or None, question, people whose
concepts are introduced in the system prompt), writes the people's rows once per batch
(:class:`~pipeline.plvm.concepts.ConceptBank`), builds ids segment by segment
(:mod:`pipeline.plvm.prompts`), and runs left-padded batches of at most ``max_batch`` rows.

Images: LLaVA-1.5 "pad" (expand to square with the processor's mean colour), then the processor's
PIL backend. Each distinct image object is encoded by the vision tower once per batch and passed
as ``mm_encoder_outputs``, so asking about n people on one photo costs one vision pass.

Prefix reuse: :class:`EncodedPrompt` records ``prefix_len``, the ids through the image block that
every question about the same photo and people shares; a KV cache of that prefix could serve all
of them (not done yet: batches are simply left-padded).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from PIL import Image

from pipeline.plvm.batching import chunks, left_pad
from pipeline.plvm.concepts import ConceptBank
from pipeline.plvm.embeddings import ConceptEmbedding, Person
from pipeline.plvm.errors import PlvmError
from pipeline.plvm.prompts import Segment, answer_segments, concept_token, prompt_segments, tokens_to_names
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
        self.hidden_size: int = cfg.text_config.hidden_size
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
            model = model.to(device)
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
        """Segments -> (ids, prefix_len). Concept names must be registered (``bank.write``) first."""
        ids: list[int] = []
        prefix_len, first_text = 0, True
        for seg in segments:
            if seg.kind == "bos":
                ids.append(self.tokenizer.bos_token_id)
            elif seg.kind == "text":
                ids += self._text_ids(seg.text, first=first_text)
                first_text = False
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

    def _image_inputs(self, images: Sequence[Image.Image | None]) -> dict[str, Any]:
        """``mm_encoder_outputs`` for rows with an image; each distinct image object encoded once."""
        from transformers.modeling_outputs import BaseModelOutputWithPooling

        index: dict[int, int] = {}
        unique: list[Image.Image] = []
        for im in images:
            if im is not None and id(im) not in index:
                index[id(im)] = len(unique)
                unique.append(im)
        if not unique:
            return {}
        squares = [expand_to_square(im, self.pad_fill) for im in unique]
        pixel_values = self.image_processor(images=squares, return_tensors="pt")["pixel_values"]  # (U, 3, S, S)
        pixel_values = pixel_values.to(self.device, self.model.dtype)
        features = self.model.get_image_features(
            pixel_values=pixel_values, return_dict=True
        ).pooler_output  # U x (N, H)
        rows = [features[index[id(im)]] for im in images if im is not None]
        return {"mm_encoder_outputs": {"image": BaseModelOutputWithPooling(pooler_output=rows)}}

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
    def generate(self, requests: Sequence[LvlmRequest], max_new_tokens: int = 40) -> list[str]:
        """Greedy answers, concept tokens decoded to names; soft/other people's tokens never generated."""
        from transformers import GenerationConfig, LogitsProcessorList

        config = GenerationConfig(
            max_new_tokens=max_new_tokens,
            do_sample=False,
            num_beams=1,
            pad_token_id=self.pad_id,
            eos_token_id=self.tokenizer.eos_token_id,
            bos_token_id=self.tokenizer.bos_token_id,
        )
        texts: list[str] = []
        for chunk, encoded in self._chunks(requests):
            inputs, _, bias = self._batch(chunk, encoded)
            out = self.model.generate(
                **inputs, generation_config=config, logits_processor=LogitsProcessorList([_AddBias(bias)])
            )
            new = out[:, inputs["input_ids"].shape[1] :].tolist()  # (b, n_new)
            texts += [self.decode(ids, e.names) for ids, e in zip(new, encoded, strict=True)]
        return texts

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
        import bitsandbytes  # noqa: F401
    except ImportError as exc:
        raise PlvmError("load_in_8bit needs the bitsandbytes package (pip install bitsandbytes accelerate)") from exc
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_8bit=True)
