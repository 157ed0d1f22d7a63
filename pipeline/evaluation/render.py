"""Human-facing views of a recognition report: a rich table for the terminal and an ROC plot.

This module reads a :class:`~pipeline.evaluation.metrics.RecognitionReport` by attribute only and
does not import :mod:`pipeline.evaluation.metrics` at run time, so metrics can re-export it.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from pipeline.evaluation.metrics import RecognitionReport


def _pct(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{100 * value:.1f}%"


def render_table(report: RecognitionReport, top: int = 5) -> Table:
    """The CLI summary: headline scores, then the ``top`` worst identities and confused pairs."""
    decided_by = "model's yes/no" if report.threshold is None else f"score >= {report.threshold:g}"
    table = Table(title=f"Recognition ({decided_by})", show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("positive accuracy (recall)", _pct(report.positive_accuracy))
    table.add_row("negative accuracy", _pct(report.negative_accuracy))
    table.add_row("weighted accuracy", _pct(report.weighted_accuracy), style="bold")
    table.add_row("precision", _pct(report.precision))
    table.add_row("F1", _pct(report.f1))
    table.add_row("identities / queries / pairs", f"{report.n_identities} / {report.n_queries} / {report.n_pairs}")
    table.add_row("TP / FP / TN / FN", f"{report.tp} / {report.fp} / {report.tn} / {report.fn}")
    if report.best is not None:
        best = report.best
        table.add_row("best threshold (on this data)", f"{best.threshold:.4g} -> {_pct(best.weighted_accuracy)}")
    if report.auc is not None:
        table.add_row("ROC AUC", f"{report.auc:.3f}")
    if report.failures:
        table.add_row("failed images (see the list)", str(len(report.failures)), style="red")
    worst = report.worst_identities(top)
    if worst:
        table.add_section()
        for row in worst:
            table.add_row(f"worst: {row.name}", f"pos {_pct(row.positive_accuracy)}  neg {_pct(row.negative_accuracy)}")
    if report.confused_pairs:
        table.add_section()
        for pair in report.confused_pairs[:top]:
            table.add_row(f"confused: {pair.identity} on {pair.owner}'s photos", f"{pair.count}/{pair.total}")
    return table


def render_text(report: RecognitionReport, top: int = 5, width: int = 100) -> str:
    """:func:`render_table` as plain text (no colour codes), e.g. for logs."""
    console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
    console.print(render_table(report, top))
    return console.export_text()


def save_roc_png(report: RecognitionReport, path: Path) -> Path:
    """Write the ROC curve with its AUC, the operating point and the best threshold, as a PNG.

    Side effects: creates ``path``'s parent folders and writes ``path`` (overwriting it).

    Raises:
        ValueError: the report has no ROC (records without scores, or one class missing).
    """
    if not report.roc:
        raise ValueError("no ROC curve: every record needs a score and both positives and negatives are needed")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fpr, tpr = zip(*report.roc, strict=True)
    figure = Figure(figsize=(4.5, 4.5), dpi=100)  # no pyplot: no global state, no GUI backend
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.plot(fpr, tpr, lw=2, label=f"ROC (AUC {report.auc:.3f})")
    axes.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="chance")
    if not (math.isnan(report.negative_accuracy) or math.isnan(report.positive_accuracy)):
        axes.scatter(
            [1 - report.negative_accuracy], [report.positive_accuracy], color="black", zorder=3, label="operating point"
        )
    if report.best is not None:
        best = report.best
        axes.scatter(
            [1 - best.negative_accuracy],
            [best.positive_accuracy],
            marker="*",
            s=120,
            color="tab:red",
            zorder=3,
            label=f"best threshold {best.threshold:.3g}",
        )
    axes.set(
        xlabel="false positive rate (1 - negative accuracy)",
        ylabel="true positive rate (positive accuracy)",
        xlim=(0, 1),
        ylim=(0, 1.02),
    )
    axes.set_title(f"{report.n_identities} identities, {report.n_pairs} pairs")
    axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, format="png")
    return path
