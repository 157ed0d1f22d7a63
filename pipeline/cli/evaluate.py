"""CLI commands ``eval recognition`` and ``eval vqa``: benchmarks on the release's evaluation formats
(Yo'LLaVA/MyVLM style identity folders and multiple-choice questions).

They never open the pipeline's database: enrolled people and tagged photos are left alone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from pipeline.cli.app import UserError, app, err, out, settings, use_profile
from pipeline.profile_names import listed

eval_app = typer.Typer(
    help="Benchmarks on the release's evaluation data (Yo'LLaVA/MyVLM style; never touches the database).",
    no_args_is_help=True,
)
app.add_typer(eval_app, name="eval")


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions whose message is enough for the user (printed without a traceback)."""
    from pipeline.datasets.release import VqaFormatError
    from pipeline.errors import PipelineError

    return (PipelineError, VqaFormatError, FileNotFoundError)  # evaluation's own errors, missing weights


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    out.print(f"wrote {path}")


def _scorer_and_version(profile: str) -> tuple[Any, str]:
    """(the profile's recognition scorer, or None for face matches alone; model version) for the
    configured profile; loads no weights. A weight file the version names must be present."""
    from pipeline.profiles import profile_type

    kind = profile_type(profile)
    if not kind.gives_recognition_evidence:
        from pipeline.recognition.faces import get_face_model

        return None, get_face_model().version
    scorer = kind.recognition_scorer(settings())
    return scorer, scorer.model_version


@eval_app.command("recognition")
def eval_recognition(
    folder: Annotated[Path, typer.Argument(help="One sub-folder per identity: NAME/ref_img.png, NAME/query_img*")],
    threshold: Annotated[
        float | None,
        typer.Option(
            "--threshold",
            help="Decide 'yes' when score >= T (default: match_threshold for faces, "
            "recognition_threshold for profiles with recognition evidence)",
        ),
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the full report as JSON here")] = None,
    roc: Annotated[
        Path | None,
        typer.Option(
            "--roc",
            help="Write the ROC plot (PNG) here; default with --json: FILE.roc.png next to it, without --json: no plot",
        ),
    ] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Progress bar on stderr")] = True,
    closed_set: Annotated[
        bool,
        typer.Option(
            "--closed-set",
            help="Identification mode: enroll every identity as `pipeline enroll` does, name every query's faces "
            "as tagging does, report name precision/recall/F1, wrong names and a threshold/margin sweep",
        ),
    ] = False,
    profile: Annotated[str | None, typer.Option("--profile", help=f"{listed()} (same as the global option)")] = None,
) -> None:
    """Recognition benchmark: for each identity, its own queries are positives, everyone else's negatives.

    Prints positive/negative/weighted accuracy, precision, F1, the worst identities, the most confused pairs
    and the best threshold on this data (optimistic: chosen on the same data).

    Images that cannot be decoded are listed and not scored; with the faces profile a query without a face
    is listed and scored 'no' for every identity.
    """
    from pipeline.evaluation.metrics import report_to_json
    from pipeline.evaluation.recognition import evaluate_recognition, load_dataset
    from pipeline.evaluation.render import render_table

    use_profile(profile)
    if closed_set:
        _closed_set(folder.expanduser(), json_out, progress)
        return
    s = settings()
    try:
        load_dataset(folder.expanduser())  # a missing or empty folder fails before any model loads
        scorer, version = _scorer_and_version(s.profile)
        report = evaluate_recognition(s, folder.expanduser(), engine=scorer, threshold=threshold, progress=progress)
    except _user_errors() as error:
        raise UserError(str(error)) from None
    out.print(render_table(report))
    for note in report.notes:
        out.print(f"note: {note}")
    for failure in report.failures[:20]:
        err.print(f"[yellow]listed:[/] {failure.path}: {failure.reason}")
    if len(report.failures) > 20:
        err.print(f"[yellow]... and {len(report.failures) - 20} more listed images (all are in the JSON)[/]")
    if json_out is not None:
        data = report_to_json(report)
        data.update(profile=s.profile, model_version=version, root=str(folder.expanduser().resolve()))
        _write_json(json_out, data)
    roc_path = roc or (json_out.with_suffix(".roc.png") if json_out is not None else None)
    if roc_path is not None:
        _save_roc(report, roc_path)


def _closed_set(folder: Path, json_out: Path | None, progress: bool) -> None:
    from pipeline.evaluation.identification import identification_report, run_identification
    from pipeline.evaluation.render_identification import render_identification
    from pipeline.recognition.open_set import NamingRule

    s = settings()
    try:
        run = run_identification(s, folder, progress=progress)
    except _user_errors() as error:
        raise UserError(str(error)) from None
    report = identification_report(run, NamingRule.from_settings(s))
    render_identification(report, out)
    for failure in report["failures"]:
        err.print(f"[yellow]listed:[/] {failure['path']}: {failure['reason']}")
    if json_out is not None:
        report.update(profile=s.profile, root=str(folder.resolve()))
        _write_json(json_out, report)


def _save_roc(report: Any, path: Path) -> None:
    from pipeline.evaluation.render import save_roc_png

    try:
        save_roc_png(report, path)
    except ValueError as error:  # e.g. one identity: no negatives, no ROC
        err.print(f"[yellow]no ROC plot written: {error}[/]")
        return
    except ImportError as error:
        raise UserError(f"the ROC plot needs matplotlib ({error}); pip install matplotlib") from None
    out.print(f"wrote {path}")


@eval_app.command("vqa")
def eval_vqa(
    questions: Annotated[
        Path, typer.Argument(help="JSON list of {ref_img, query_img?, question, multiple_choice, correct_answer}")
    ],
    root: Annotated[
        Path | None, typer.Option("--root", help="Folder the image paths are relative to (default: the JSON's folder)")
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the report (with per-item scores) here")
    ] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Progress bar on stderr")] = True,
    profile: Annotated[str | None, typer.Option("--profile", help=f"{listed()} (same as the global option)")] = None,
) -> None:
    """Multiple-choice accuracy, overall, with a photo and text-only (a profile that answers questions).

    The model's answer is the option whose tokens have the highest summed log-probability given the
    question (not length-normalised; ties: first option).
    """
    from rich.table import Table

    from pipeline.evaluation.vqa import evaluate_vqa

    use_profile(profile)
    s = settings()
    if not questions.expanduser().is_file():
        raise UserError(f"question file {questions} does not exist")
    if root is not None and not root.expanduser().is_dir():
        raise UserError(f"--root {root} is not a folder")
    try:
        report = evaluate_vqa(s, questions.expanduser(), root.expanduser() if root else None, progress=progress)
    except _user_errors() as error:
        raise UserError(str(error)) from None

    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{100 * value:.1f}%"

    table = Table("items", "accuracy", "count", title=f"Multiple choice ({s.profile})")
    table.add_row("all", pct(report["accuracy"]), str(report["n_items"]), style="bold")
    table.add_row("with a photo", pct(report["visual_accuracy"]), str(report["n_visual"]))
    table.add_row("text only", pct(report["text_accuracy"]), str(report["n_text"]))
    if report["n_unanswered"]:
        table.add_row("unanswered (image failed)", "", str(report["n_unanswered"]), style="red")
    out.print(table)
    out.print(f"rule: {report['scoring_rule']}")
    if report["random_weights"]:
        err.print("[yellow]note: the tiny profile has random weights; these figures are meaningless[/]")
    for failure in report["failures"]:
        err.print(f"[yellow]failed:[/] {failure['path']}: {failure['reason']}")
    for line in report["odd_items"]:
        err.print(f"[yellow]odd item (scored all the same):[/] {line}")
    if json_out is not None:
        _write_json(json_out, report)
