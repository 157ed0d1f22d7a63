"""What an Aligner training run is told (:class:`TrainConfig`) and what it reports (:class:`TrainResult`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args

Precision = Literal["auto", "no", "fp16", "bf16"]
Decay = Literal["cosine", "linear"]


@dataclass
class TrainConfig:
    """One training run. Steps count optimizer updates (each of ``grad_accum`` micro-batches).

    Data:
        data_dir: identity folders ``NAME/ref_img.*`` + ``NAME/query_img*`` (the release's format).
        qa_json: optional multiple-choice JSON (the release's format); paths relative to its folder
            (falling back to ``data_dir``). Items of held-out identities are not trained on.
        qa_fraction: share of each batch drawn from the QA items (when there are any).
        held_out_identities: fraction of identities never trained on (or ``held_out_names``).
        held_out_query_fraction: fraction of each training identity's queries kept for evaluation.
        reference_from_queries: probability that a positive pair's "reference" is another query
            photo of the identity instead of ``ref_img`` (augmentation; 0 = release-like).
        paired: draw recognition items in (positive, negative) pairs of the same reference.
        paraphrase_fraction: share of recognition items asked with a paraphrase of the inference
            question (0: always the inference question, e.g. for the CPU demo's random LVLM, to which
            a paraphrase is just another token layout to learn).
    Optimisation:
        steps, batch_size, grad_accum, lr, warmup_steps, weight_decay, decay ("cosine"/"linear" to
        ``min_lr_ratio * lr``), max_grad_norm (0: no clipping).
        adam_beta2: AdamW's second-moment decay. 0.999 averages over ~1,000 updates, so in a short
            run the first steps' large gradients (learning to answer at all) damp the updates for
            hundreds of steps; 0.95 (~20 updates) forgets them (measurably faster on the CPU demo).
        yes_no_weight / other_weight: loss weight of answer tokens that are the LVLM's " Yes"/" No"
            tokens / of every other answer token (prompt tokens always weigh 0).
    Model:
        aligner_sizes: AlignerConfig fields other than width/out_dim (defaults: the release's).
        data_init: data-dependent initialisation of a NEW Aligner (:mod:`pipeline.plvm.training.init`):
            input layers standardise the training references' features, outputs start at the
            LVLM's embedding / LM-head scale (tokens: ``init_token_scale`` x the embedding spread).
        init_from: start from this Aligner checkpoint instead of a random Aligner.
        resume: continue from ``<out>.train-state.pt`` (and ``out``) if it exists.
        device/dtype: as in Settings ("auto"); None: the settings' values. ``precision``: autocast
            dtype on CUDA ("auto": the frozen models' dtype); CPU always trains in float32.
        gradient_checkpointing: recompute the LVLM's layer activations in the backward pass.
    Bookkeeping:
        eval_every / save_every: every K steps (0: only at the end). ``stop_after``: end this run
            after that step (checkpoint + state written), e.g. for a time-limited job; ``resume``
            continues. ``cache_features``: keep frozen image features in memory (one pass per image).
    """

    data_dir: Path
    out: Path
    qa_json: Path | None = None
    steps: int = 1000
    batch_size: int = 8
    grad_accum: int = 1
    lr: float = 1e-4
    warmup_steps: int = 50
    weight_decay: float = 0.01
    decay: Decay = "cosine"
    min_lr_ratio: float = 0.0
    max_grad_norm: float = 1.0
    adam_beta2: float = 0.999
    yes_no_weight: float = 3.0
    other_weight: float = 0.1
    qa_fraction: float = 0.3
    eval_every: int = 0
    save_every: int = 0
    held_out_identities: float = 0.1
    held_out_names: tuple[str, ...] | None = None
    held_out_query_fraction: float = 0.2
    reference_from_queries: float = 0.0
    paired: bool = True
    paraphrase_fraction: float = 0.5
    seed: int = 0
    device: str | None = None
    dtype: str | None = None
    precision: Precision = "auto"
    resume: bool = False
    init_from: Path | None = None
    aligner_sizes: dict[str, int] = field(default_factory=dict)
    data_init: bool = True
    init_token_scale: float = 1.0
    gradient_checkpointing: bool = False
    cache_features: bool = True
    stop_after: int | None = None
    eval_threshold: float | None = None
    final_eval: bool = True
    progress: bool = True

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        self.out = Path(self.out)
        self.qa_json = Path(self.qa_json) if self.qa_json is not None else None
        self.init_from = Path(self.init_from) if self.init_from is not None else None
        if self.held_out_names is not None:
            self.held_out_names = tuple(self.held_out_names)
        for name in ("steps", "batch_size", "grad_accum"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.held_out_identities < 1 or not 0 <= self.held_out_query_fraction < 1:
            raise ValueError("held-out fractions must be in [0, 1)")
        if self.lr <= 0 or self.warmup_steps < 0 or self.yes_no_weight < 0 or self.other_weight < 0:
            raise ValueError("lr must be > 0; warmup_steps and the token weights >= 0")
        if not 0 <= self.paraphrase_fraction <= 1 or not 0 <= self.adam_beta2 < 1 or self.init_token_scale <= 0:
            raise ValueError("paraphrase_fraction must be in [0, 1], adam_beta2 in [0, 1), init_token_scale > 0")
        if self.precision not in get_args(Precision) or self.decay not in get_args(Decay):
            raise ValueError(
                f"precision must be one of {', '.join(get_args(Precision))} (got {self.precision!r}) and decay "
                f"one of {', '.join(get_args(Decay))} (got {self.decay!r})"
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (paths as strings)."""
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, Path):
                data[key] = str(value)
            elif isinstance(value, tuple):
                data[key] = list(value)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class EvalPoint:
    """Held-out recognition at one step: ``split`` is "seen" (held-out queries of training
    identities) or "unseen" (identities never trained on)."""

    step: int
    split: str
    positive_accuracy: float
    negative_accuracy: float
    weighted_accuracy: float
    n_identities: int
    n_queries: int
    auc: float = float("nan")  # threshold-free: ROC area of the P(yes) scores


@dataclass
class TrainResult:
    """What a run did. ``losses``/``accuracies``/``lrs``/``evals``: every optimizer step since step 1
    (a resumed run includes the earlier runs'); accuracy = yes/no correctness at the first answer
    token of the step's recognition items (NaN if none); ``lrs``: the learning rate each step used.
    ``first_step``..``last_step``: the steps THIS run did; ``seconds``: its wall time (with
    evaluation and saving)."""

    checkpoint: Path
    state: Path
    first_step: int
    last_step: int
    losses: list[float] = field(default_factory=list)
    accuracies: list[float] = field(default_factory=list)
    lrs: list[float] = field(default_factory=list)
    evals: list[EvalPoint] = field(default_factory=list)
    seconds: float = 0.0
    split: dict[str, Any] = field(default_factory=dict)
    step_seconds: list[float] = field(default_factory=list)  # wall time of each step of THIS run
    step_tokens: list[int] = field(default_factory=list)  # real (non-pad) LVLM tokens of each step of THIS run

    def to_json(self) -> dict[str, Any]:
        """JSON-able dict (paths as strings, NaN as None)."""

        def clean(value: Any) -> Any:
            if isinstance(value, float) and value != value:
                return None
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items()}
            if isinstance(value, (list, tuple)):
                return [clean(v) for v in value]
            return str(value) if isinstance(value, Path) else value

        return clean(asdict(self))

    def final_eval(self, split: str) -> EvalPoint | None:
        """The last evaluation of ``split`` ("seen"/"unseen"), if any."""
        points = [e for e in self.evals if e.split == split]
        return points[-1] if points else None
