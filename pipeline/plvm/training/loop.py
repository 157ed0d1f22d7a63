"""The Aligner training loop: frozen DINOv2 + frozen LLaVA, only the Aligner's weights move.

One optimizer step = ``grad_accum`` micro-batches of ``batch_size`` items, each:
z_ref (frozen, cached) -> Aligner -> (tokens, lm_weight) -> frozen LVLM with those in the
concept/soft positions -> logits at answer positions -> weighted cross-entropy. Then gradient
clipping, AdamW, the LR schedule; fp16/bf16 autocast (+ grad scaling for fp16) on CUDA.
"""

from __future__ import annotations

import contextlib
import logging
import math
import tempfile
import time
from collections import deque
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from pipeline.plvm.aligner import Aligner, AlignerConfig
from pipeline.plvm.checkpoint import load_aligner, read_sidecar
from pipeline.plvm.training.config import EvalPoint, TrainConfig, TrainResult
from pipeline.plvm.training.data import ExampleSampler, Split, load_qa_examples, split_identities
from pipeline.plvm.training.evaluate import HeldoutEvaluator, evaluate_heldout, prepare_eval_folders
from pipeline.plvm.training.features import FrozenFeatures
from pipeline.plvm.training.forward import answer_logits
from pipeline.plvm.training.init import initialise_from_data
from pipeline.plvm.training.loss import weighted_answer_loss, yes_no_correct
from pipeline.plvm.training.rows import RowBuilder
from pipeline.plvm.training.schedule import make_scheduler
from pipeline.plvm.training.state import load_state, restore_rng, rng_state, save_checkpoint, state_path

if TYPE_CHECKING:
    from pipeline.plvm.engine import PlvmEngine
    from pipeline.plvm.lvlm import Lvlm
    from pipeline.plvm.reference import ReferenceEncoder

log = logging.getLogger(__name__)


@dataclass
class FrozenModels:
    """The frozen parts. ``engine`` (holding the same encoder and LVLM) is needed for held-out
    evaluation; without it a run trains and saves but does not evaluate."""

    encoder: ReferenceEncoder
    lvlm: Lvlm
    engine: PlvmEngine | None = None

    @property
    def device(self) -> torch.device:
        return self.lvlm.device


def load_frozen_models(settings: Any, config: TrainConfig) -> FrozenModels:
    """The configured profile's reference encoder and LVLM (plvm: the settings' ids; tiny: the
    bundle), through a :class:`PlvmEngine` whose Aligner source is ``config.out`` (so the model
    version evaluation reports names the checkpoint being trained). Side effect: loads weights."""
    from pipeline.plvm.engine import PlvmEngine

    base = PlvmEngine.from_settings(settings)
    engine = PlvmEngine(
        replace(base.sources, aligner=config.out),
        device=config.device or settings.device,
        dtype=config.dtype or settings.dtype,
        load_in_8bit=settings.load_in_8bit,
        max_new_tokens=settings.max_new_tokens,
        max_batch=settings.plvm_max_batch,
        reuse_prefix=settings.reuse_prefix,
    )
    return FrozenModels(engine.load_reference_encoder(), engine.load_lvlm(), engine)


def build_aligner(config: TrainConfig, width: int, hidden: int) -> Aligner:
    """A new Aligner (width/out_dim from the frozen models, other sizes from ``aligner_sizes``,
    seeded by ``config.seed``) or the ``init_from`` checkpoint. float32, train mode, on CPU."""
    if config.init_from is not None:
        aligner = load_aligner(config.init_from, config=read_sidecar(config.init_from))
        if config.aligner_sizes:
            log.warning("init_from %s: its own sizes are used, aligner_sizes is ignored", config.init_from)
    else:
        torch.manual_seed(config.seed)
        aligner = Aligner(AlignerConfig(width=width, out_dim=hidden, **config.aligner_sizes))
    if (aligner.config.width, aligner.config.out_dim) != (width, hidden):
        raise ValueError(
            f"Aligner maps {aligner.config.width} -> {aligner.config.out_dim} but the reference encoder gives "
            f"{width} and the LVLM's hidden size is {hidden}"
        )
    return aligner.float().train()


def _optimizer(aligner: Aligner, config: TrainConfig) -> torch.optim.AdamW:
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, param in aligner.named_parameters():
        (decay if param.ndim >= 2 and name != "latents" else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, config.adam_beta2), eps=1e-8)


def _autocast_dtype(config: TrainConfig, device: torch.device, model_dtype: torch.dtype) -> torch.dtype | None:
    """None on CPU or with precision "no"; else float16/bfloat16 ("auto": the frozen model's dtype)."""
    if device.type != "cuda" or config.precision == "no":
        return None
    if config.precision == "fp16":
        return torch.float16
    if config.precision == "bf16":
        return torch.bfloat16
    return model_dtype if model_dtype in (torch.float16, torch.bfloat16) else None


class _Trainer:
    """State of one run; :meth:`run` is the loop."""

    def __init__(
        self, config: TrainConfig, settings: Any, models: FrozenModels, evaluator: HeldoutEvaluator | None
    ) -> None:
        self.config, self.settings, self.models, self.evaluator = config, settings, models, evaluator
        self.device = models.device
        lvlm = models.lvlm
        self.split: Split = split_identities(
            config.data_dir,
            config.held_out_identities,
            config.held_out_names,
            config.held_out_query_fraction,
            config.seed,
            max_pixels=settings.max_image_pixels,
        )
        saved = load_state(config.out) if config.resume else None
        if config.resume and saved is None:
            log.warning("resume: no training state at %s; starting from step 0", state_path(config.out))
        if saved is not None:
            self.aligner = load_aligner(config.out, config=read_sidecar(config.out)).float().train()
        else:
            self.aligner = build_aligner(config, models.encoder.width, lvlm.hidden_size)
        self.features = FrozenFeatures(
            models.encoder, lvlm, self.device, settings.max_image_pixels, cache=config.cache_features
        )
        if saved is None and config.init_from is None and config.data_init:
            z_ref = self.features.references([i.reference for i in self.split.train]).cpu()  # (N, T, width)
            initialise_from_data(self.aligner, z_ref, lvlm, token_scale=config.init_token_scale)
        self.aligner.to(self.device)
        if models.engine is not None:
            models.engine.use_aligner(self.aligner)
        self.rows = RowBuilder(lvlm, self.aligner.config.n_soft)
        qa = load_qa_examples(config.qa_json, config.data_dir, self.split) if config.qa_json else []
        self.sampler_rng = np.random.default_rng([config.seed, 11])
        self.sampler = ExampleSampler(
            self.split.train,
            qa,
            self.sampler_rng,
            config.qa_fraction,
            config.reference_from_queries,
            paired=config.paired,
            paraphrase_fraction=config.paraphrase_fraction,
        )
        self.optimizer = _optimizer(self.aligner, config)
        self.scheduler = make_scheduler(
            self.optimizer, config.warmup_steps, config.steps, config.decay, config.min_lr_ratio
        )
        self.amp = _autocast_dtype(config, self.device, lvlm.model.dtype)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp == torch.float16)
        self.step = 0
        self.tokens_seen = 0
        self.history: dict[str, list] = {"losses": [], "accuracies": [], "lrs": [], "evals": []}
        if saved is not None:
            self._restore(saved)
        else:
            torch.manual_seed(config.seed)

    def _restore(self, saved: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scheduler.load_state_dict(saved["scheduler"])
        if saved.get("scaler"):
            self.scaler.load_state_dict(saved["scaler"])
        restore_rng(saved["rng"], self.sampler_rng)
        self.step = int(saved["step"])
        self.history = {k: list(v) for k, v in saved["history"].items()}
        if saved.get("config", {}).get("steps") != self.config.steps:
            log.warning(
                "resume: steps changed from %s to %s; the LR schedule follows the new total",
                saved.get("config", {}).get("steps"),
                self.config.steps,
            )

    # One step ----------------------------------------------------------------------------------
    def _micro_batch(self) -> tuple[torch.Tensor, int, int]:
        """Forward + backward of one micro-batch; (loss, yes/no correct, counted). Adds the batch's
        real (non-pad) token count to ``self.tokens_seen``."""
        c = self.config
        examples = self.sampler.sample(c.batch_size)
        rows = [self.rows.row(e.question, e.answer, e.query is not None) for e in examples]
        batch = self.rows.collate(rows, c.yes_no_weight, c.other_weight, self.device)
        self.tokens_seen += int(batch.attention_mask.sum())
        z_ref = self.features.references([e.reference for e in examples])  # (B, T, width)
        images = self.features.images([e.query for e in examples])
        autocast = torch.autocast(self.device.type, dtype=self.amp) if self.amp else contextlib.nullcontext()
        with autocast:
            tokens, lm_weight = self.aligner(z_ref)  # (B, Q, D), (B, D)
            out = answer_logits(self.models.lvlm, batch, tokens, lm_weight, images)
        loss = weighted_answer_loss(out)
        self.scaler.scale(loss / c.grad_accum).backward()
        correct, counted = yes_no_correct(out, self.models.lvlm.yes_id, self.models.lvlm.no_id)
        return loss.detach(), correct, counted

    def _train_step(self) -> tuple[float, float, float]:
        """One optimizer update; (mean loss, yes/no accuracy or NaN, lr used)."""
        c = self.config
        lr = self.optimizer.param_groups[0]["lr"]
        losses, correct, counted = [], 0, 0
        lm = self.models.lvlm.model.model.language_model
        if c.gradient_checkpointing:
            lm.train()  # HF only checkpoints in train mode; the LVLM has no dropout (checked at start)
        try:
            for _ in range(c.grad_accum):
                loss, ok, n = self._micro_batch()
                losses.append(float(loss))
                correct, counted = correct + ok, counted + n
        finally:
            lm.eval()
        self.scaler.unscale_(self.optimizer)
        if c.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.aligner.parameters(), c.max_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        return float(np.mean(losses)), (correct / counted if counted else math.nan), lr

    # Bookkeeping -------------------------------------------------------------------------------
    def save(self) -> None:
        state = {
            "step": self.step,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else {},
            "rng": rng_state(self.sampler_rng),
            "config": self.config.to_dict(),
            "aligner_config": self.aligner.config.to_dict(),
            "history": self.history,
            "split": self.split.summary(),
        }
        save_checkpoint(self.aligner, self.config.out, state)

    def evaluate(self, folders: dict[str, Path]) -> list[EvalPoint]:
        if self.models.engine is None or self.evaluator is None or not folders:
            return []
        if not self.config.out.is_file():
            self.save()  # the engine's model version is the checkpoint's digest
        points = evaluate_heldout(
            self.models.engine, self.evaluator, self.aligner, folders, self.step, self.config.eval_threshold
        )
        self.history["evals"] += [asdict(p) for p in points]
        return points

    def run(self) -> TrainResult:
        c = self.config
        from tqdm import tqdm

        if c.gradient_checkpointing:
            _enable_checkpointing(self.models.lvlm)
        start, started = self.step, time.perf_counter()
        end = min(c.steps, c.stop_after) if c.stop_after is not None else c.steps
        with tempfile.TemporaryDirectory(prefix="aligner-eval-") as tmp:
            evaluates = self.models.engine is not None and self.evaluator is not None
            folders = prepare_eval_folders(self.split, Path(tmp)) if evaluates else {}
            self.features.warm(
                [i.reference for i in self.split.train], [q for i in self.split.train for q in i.queries]
            )
            recent: deque[float] = deque(maxlen=50)
            step_seconds: list[float] = []
            step_tokens: list[int] = []
            bar = tqdm(
                total=c.steps, initial=self.step, desc="train aligner", disable=not c.progress, dynamic_ncols=True
            )
            with bar:
                while self.step < end:
                    tic, tokens_before = time.perf_counter(), self.tokens_seen
                    loss, acc, lr = self._train_step()
                    step_seconds.append(time.perf_counter() - tic)
                    step_tokens.append(self.tokens_seen - tokens_before)
                    self.step += 1
                    self.history["losses"].append(loss)
                    self.history["accuracies"].append(acc)
                    self.history["lrs"].append(lr)
                    if not math.isnan(acc):
                        recent.append(acc)
                    bar.update()
                    bar.set_postfix(
                        loss=f"{loss:.3f}", acc=f"{np.mean(recent) if recent else math.nan:.2f}", lr=f"{lr:.2e}"
                    )
                    if c.save_every and self.step % c.save_every == 0:
                        self.save()
                    if c.eval_every and self.step % c.eval_every == 0:
                        for p in self.evaluate(folders):
                            bar.write(_describe(p))
            if not (c.save_every and self.step % c.save_every == 0):
                self.save()
            if c.final_eval and self.step == c.steps and not (c.eval_every and self.step % c.eval_every == 0):
                for p in self.evaluate(folders):
                    log.info(_describe(p))
                self.save()  # history now holds the final evaluation
        return TrainResult(
            checkpoint=c.out,
            state=state_path(c.out),
            first_step=start + 1,
            last_step=self.step,
            losses=list(self.history["losses"]),
            accuracies=list(self.history["accuracies"]),
            lrs=list(self.history["lrs"]),
            evals=[EvalPoint(**e) for e in self.history["evals"]],
            seconds=time.perf_counter() - started,
            split=self.split.summary(),
            step_seconds=step_seconds,
            step_tokens=step_tokens,
        )


def _describe(p: EvalPoint) -> str:
    return (
        f"step {p.step} eval[{p.split}]: weighted {p.weighted_accuracy:.3f} (positives {p.positive_accuracy:.3f}, "
        f"negatives {p.negative_accuracy:.3f}, AUC {p.auc:.3f}; {p.n_identities} identities, {p.n_queries} queries)"
    )


def _enable_checkpointing(lvlm: Lvlm) -> None:
    cfg = lvlm.model.config.text_config
    if float(getattr(cfg, "attention_dropout", 0.0) or 0.0) > 0:
        raise ValueError("gradient checkpointing runs the LVLM in train mode, which needs attention_dropout == 0")
    lvlm.model.model.language_model.gradient_checkpointing_enable(
        gradient_checkpointing_kwargs={"use_reentrant": False}
    )


def train_aligner(
    config: TrainConfig,
    settings: Any,
    *,
    models: FrozenModels | None = None,
    evaluator: HeldoutEvaluator | None = None,
) -> TrainResult:
    """Train an Aligner for the configured profile's frozen reference encoder and LVLM.

    Args:
        config: the run (:class:`TrainConfig`).
        settings: pipeline Settings (profile plvm or tiny; device, dtype, thresholds for evaluation).
        models: already loaded frozen parts (e.g. random real-shape models in a benchmark); default:
            :func:`load_frozen_models`.
        evaluator: scores the held-out identity folders (``pipeline train`` passes
            ``pipeline eval recognition``'s code); None: the run trains and saves but does not evaluate.

    Returns:
        :class:`TrainResult`; its ``losses``/``accuracies``/``lrs``/``evals`` cover every step since
        step 1 (a resumed run includes the earlier runs' history); ``first_step`` is this run's first.

    Side effects: loads models, reads the data, writes ``config.out`` (+ sidecar, + training
    state) every ``save_every`` steps and at the end, prints a progress bar to stderr.
    """
    models = models or load_frozen_models(settings, config)
    return _Trainer(config, settings, models, evaluator).run()
