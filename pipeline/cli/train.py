"""CLI command ``pipeline train``: train an Aligner for the configured profile's frozen models."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli.app import UserError, app, err, out, settings


@app.command("train")
def train(
    data: Annotated[
        Path,
        typer.Option("--data", help="Identity folders: NAME/ref_img.* + NAME/query_img*", exists=True, file_okay=False),
    ],
    checkpoint: Annotated[
        Path, typer.Option("--out", help="Aligner checkpoint to write (released format + .json sidecar)")
    ],
    qa: Annotated[
        Path | None,
        typer.Option(
            "--qa", help="Multiple-choice QA JSON (release format) to train on too", exists=True, dir_okay=False
        ),
    ] = None,
    steps: Annotated[int, typer.Option("--steps", min=1, help="Optimizer steps")] = 1000,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Items per micro-batch")] = 8,
    accum: Annotated[int, typer.Option("--accum", min=1, help="Micro-batches per optimizer step")] = 1,
    lr: Annotated[float, typer.Option("--lr", help="Peak learning rate (AdamW)")] = 1e-4,
    warmup: Annotated[int, typer.Option("--warmup", min=0, help="Linear warm-up steps (then cosine decay)")] = 50,
    weight_decay: Annotated[float, typer.Option("--weight-decay")] = 0.01,
    yes_no_weight: Annotated[
        float, typer.Option("--yes-no-weight", help="Loss weight of the Yes/No answer tokens")
    ] = 3.0,
    other_weight: Annotated[
        float, typer.Option("--other-weight", help="Loss weight of the other answer tokens (the release's 0.1)")
    ] = 0.1,
    paraphrase_fraction: Annotated[
        float,
        typer.Option(
            "--paraphrase-fraction", help="Share of recognition items asked with a paraphrase of the inference question"
        ),
    ] = 0.5,
    init_token_scale: Annotated[
        float,
        typer.Option(
            "--init-token-scale", help="New Aligner: its output tokens start at this x the LVLM's embedding spread"
        ),
    ] = 1.0,
    adam_beta2: Annotated[
        float, typer.Option("--adam-beta2", help="AdamW second-moment decay (0.95 suits short runs)")
    ] = 0.999,
    eval_every: Annotated[
        int, typer.Option("--eval-every", min=0, help="Held-out evaluation every K steps (0: at the end)")
    ] = 0,
    save_every: Annotated[
        int, typer.Option("--save-every", min=0, help="Checkpoint every K steps (0: at the end)")
    ] = 0,
    held_out_identities: Annotated[
        float, typer.Option("--held-out-identities", help="Fraction of identities never trained on")
    ] = 0.1,
    held_out: Annotated[
        list[str] | None, typer.Option("--held-out", help="Hold out this identity (repeatable; overrides the fraction)")
    ] = None,
    held_out_queries: Annotated[
        float,
        typer.Option("--held-out-queries", help="Fraction of each training identity's queries kept for evaluation"),
    ] = 0.2,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from <out>.train-state.pt")] = False,
    init_from: Annotated[
        Path | None, typer.Option("--init-from", help="Start from this Aligner checkpoint", exists=True, dir_okay=False)
    ] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    precision: Annotated[
        str, typer.Option("--precision", help="auto, no, fp16, bf16 (CUDA autocast; CPU trains in float32)")
    ] = "auto",
    gradient_checkpointing: Annotated[
        bool, typer.Option("--gradient-checkpointing", help="Save GPU memory, spend compute")
    ] = False,
    aligner_sizes: Annotated[
        str | None, typer.Option("--aligner-sizes", help="JSON, e.g. '{\"depth\": 2}' (new Aligner only)")
    ] = None,
    report: Annotated[
        Path | None, typer.Option("--report", help="Also write the result (losses, evaluations) as JSON")
    ] = None,
) -> None:
    """Train the Aligner (only it learns; the reference encoder and the LVLM stay frozen).

    Uses the configured profile's models (a trainable profile: its hub ids, or the tiny test bundle).
    Evaluates held-out identities and held-out queries with the code of `pipeline eval recognition`.
    """
    from pipeline.evaluation.recognition import evaluate_recognition
    from pipeline.profiles import make_profile, profile_type, profiles_that

    s = settings()
    kind = profile_type(s.profile)
    if not kind.trainable:
        raise UserError(f"`pipeline train` needs {profiles_that('trainable')}")
    precisions = kind.training_precisions()
    if precision not in precisions:
        raise typer.BadParameter(f"{precision!r} is not one of {', '.join(precisions)}", param_hint="--precision")
    try:
        sizes = json.loads(aligner_sizes) if aligner_sizes else {}
        config = kind.training_config(
            data_dir=data,
            out=checkpoint,
            qa_json=qa,
            steps=steps,
            batch_size=batch_size,
            grad_accum=accum,
            lr=lr,
            warmup_steps=warmup,
            weight_decay=weight_decay,
            yes_no_weight=yes_no_weight,
            other_weight=other_weight,
            eval_every=eval_every,
            save_every=save_every,
            held_out_identities=held_out_identities,
            held_out_names=tuple(held_out) if held_out else None,
            held_out_query_fraction=held_out_queries,
            resume=resume,
            init_from=init_from,
            seed=seed,
            precision=precision,  # checked against the profile's precisions above
            gradient_checkpointing=gradient_checkpointing,
            aligner_sizes=sizes,
            paraphrase_fraction=paraphrase_fraction,
            init_token_scale=init_token_scale,
            adam_beta2=adam_beta2,
        )
    except (ValueError, TypeError) as error:
        raise UserError(str(error)) from error
    if make_profile(s).random_weights:
        err.print("[yellow]note: the tiny profile's models are random; the figures only show that training works[/]")
    try:
        result = kind.train(config, s, partial(evaluate_recognition, s))
    except ValueError as error:
        raise UserError(str(error)) from error
    losses = result.losses
    out.print(
        f"trained steps {result.first_step}..{result.last_step} in {result.seconds:.0f} s; "
        f"loss {losses[0]:.3f} -> {losses[-1]:.3f}"
        if losses
        else "no step was run"
    )
    for split in ("seen", "unseen"):
        point = result.final_eval(split)
        if point is not None:
            what = "held-out queries of training identities" if split == "seen" else "identities never trained on"
            out.print(
                f"{what}: weighted accuracy {point.weighted_accuracy:.3f} (positives "
                f"{point.positive_accuracy:.3f}, negatives {point.negative_accuracy:.3f}, AUC {point.auc:.3f})"
            )
    skipped = result.split.get("skipped_images", [])
    for line in skipped:
        err.print(f"[yellow]skipped:[/] {line}")
    if skipped:
        err.print(f"[yellow]{len(skipped)} unreadable training image(s) skipped (listed above)[/]")
    out.print(f"checkpoint: {result.checkpoint} (check it with `pipeline models verify-aligner {result.checkpoint}`)")
    out.print(f"training state: {result.state} (continue with --resume)")
    if report is not None:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(json.dumps(result.to_json(), indent=1) + "\n")
