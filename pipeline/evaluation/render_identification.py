"""Terminal view of a closed-set identification report
(:func:`~pipeline.evaluation.identification.identification_report`)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def render_identification(report: dict[str, Any], console: Console, top: int = 15) -> None:
    """Print the headline figures (rule vs plain 1:1 rule), the wrong names and the sweep."""
    rule, base = report["rule"], report["baseline_1to1"]
    table = Table("figure", "open-set rule", "1:1 rule", title="Closed-set identification (names written)")
    for key, label in (("precision", "name precision"), ("recall", "name recall"), ("f1", "F1")):
        table.add_row(label, _pct(report[key]), _pct(base[key]))
    table.add_row("names written", str(report["n_names"]), str(base["n_names"]))
    table.add_row("wrong names", str(report["n_wrong_names"]), str(base["n_wrong_names"]))
    console.print(table)
    console.print(
        f"{report['n_enrolled']} of {report['n_identities']} identities enrolled, {report['n_queries']} queries. "
        f"Rule: cosine >= {rule['match_threshold']:g} + {rule['gallery_slope']:g} x ln({report['n_enrolled']}) = "
        f"{rule['threshold_at_gallery_size']:.3f}, margin to the second-best person >= {rule['match_margin']:g}, "
        f"faces >= {rule['min_face_px']:g} px wide with detector score >= {rule['min_face_score']:g}. "
        f"1:1 rule: cosine >= {base['rule']['match_threshold']:g} only."
    )
    if report["wrong_names"]:
        wrong = Table("query", "owner", "named", "cosine", title=f"Wrong names (top {top})")
        for w in report["wrong_names"][:top]:
            wrong.add_row(w["query"], w["owner"], w["name"], f"{w['score']:.3f}")
        console.print(wrong)
    margins = sorted({p["margin"] for p in report["sweep"]})
    sweep = Table(
        "threshold", *[f"margin {m:g}: P / R / wrong" for m in margins], title="Sweep (threshold at this size)"
    )
    by_key = {(p["threshold"], p["margin"]): p for p in report["sweep"]}
    for threshold in sorted({p["threshold"] for p in report["sweep"]}):
        cells = []
        for m in margins:
            p = by_key[threshold, m]
            cells.append(f"{_pct(p['precision'])} / {_pct(p['recall'])} / {p['n_wrong_names']}")
        sweep.add_row(f"{threshold:.2f}", *cells)
    console.print(sweep)
