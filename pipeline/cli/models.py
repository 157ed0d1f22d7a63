"""CLI commands around the profiles' model weights: ``models ...`` and ``ask``.

``models pull``, ``verify-aligner`` and ``tiny`` work whatever profile is configured: they ask the
configured profile when it is trainable, else the first trainable one (``profile_type_that``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from pipeline.cli.app import UserError, app, err, out, settings

models_app = typer.Typer(
    help="Model weights: pull, check, verify an Aligner, write the tiny test bundle.", no_args_is_help=True
)
app.add_typer(models_app, name="models")


@models_app.command("verify-aligner")
def verify_aligner(checkpoint: Annotated[Path, typer.Argument(exists=True, dir_okay=False)]) -> None:
    """Load an Aligner checkpoint strictly; print the config it fits and its parameter count."""
    from pipeline.profiles import profile_type_that

    info = profile_type_that("trainable", settings().profile).describe_checkpoint(checkpoint)
    table = Table("field", "value", title=f"Aligner {checkpoint.name}")
    for key, value in info.items():
        table.add_row(str(key), f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value))
    out.print(table)


@models_app.command("check")
def models_check() -> None:
    """List which weights the configured profile needs and whether each is present (no download)."""
    from pipeline.profiles import profile_type

    s = settings()
    rows = profile_type(s.profile).weight_files(s)  # a trainable profile's need PyTorch (its extra)
    for what, where, present in rows:  # one plain line each: paths are never cut
        out.print(f"{'[green]present[/]' if present else '[red]missing[/]'}  {what}: {where}", highlight=False)
    if not all(p for _, _, p in rows):
        out.print("fetch the hub models with `pipeline models pull`; see the README for the Aligner checkpoint")
        raise typer.Exit(1)


@models_app.command("pull")
def models_pull() -> None:
    """Download the DINOv2 and LLaVA weights now (workers never download), and say where the Aligner goes."""
    from pipeline.profiles import profile_type_that

    s = settings()
    paths, by_hand = profile_type_that("trainable", s.profile).pull_weights(s)
    for path in paths:
        out.print(f"present: {path}")
    if by_hand:
        out.print(by_hand)


@models_app.command("tiny")
def models_tiny(folder: Annotated[Path, typer.Argument(help="Where to write the bundle")], seed: int = 0) -> None:
    """Write the tiny random test bundle (tokenizer, DINOv2, LLaVA, Aligner) to FOLDER."""
    from pipeline.profiles import profile_type_that

    path, usage = profile_type_that("trainable", settings().profile).write_test_bundle(folder, seed)
    out.print(f"tiny bundle (random weights, for tests only) written to {path}")
    out.print(f"use it with: {usage}")


@app.command()
def ask(
    image: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A photo")],
    question: Annotated[str, typer.Argument(help="Enrolled names in the question stand for those people")],
) -> None:
    """Ask a personalized question about a photo (a profile that answers questions, not faces)."""
    from pipeline.profiles import profile_type, profiles_that
    from pipeline.tagging.ask import ask_about

    s = settings()
    if not profile_type(s.profile).answers_questions:
        raise UserError(f"`pipeline ask` needs {profiles_that('answers_questions')}")
    answer, used, random_weights = ask_about(s, image, question)
    if random_weights:
        err.print("[yellow]note: the tiny profile has random weights; this answer is meaningless[/]")
    if used:
        err.print("concepts: " + ", ".join(used))
    out.print(answer)
