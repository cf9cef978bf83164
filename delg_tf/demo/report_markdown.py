"""The demo's `report.md`: the retrieval table, the figures and the stage timings.

Metrics arrive as the demo's `metrics.json` holds them: for each row (e.g. "untrained",
"trained_global", "trained_reranked") `{"medium": {"mAP": float, "mP@k": {"1": .., "5": ..,
"10": ..}}, "hard": {...}}`, every number in percent.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

from delg_tf.common.atomic_files import write_text_atomically
from delg_tf.evaluation.revisited import REPORTED_PROTOCOLS

PROTOCOLS = REPORTED_PROTOCOLS
# Attention heatmaps the demo report shows (the query and its first results).
ATTENTION_IMAGES = 3

ROW_TITLES = {
    "untrained": "untrained network, global search",
    "trained_global": "trained network, global search",
    "trained_reranked": "trained network, global search + re-ranking (RANSAC)",
}


@dataclasses.dataclass(frozen=True)
class Figure:
    """A PNG shown in the report.

    Attributes:
      path: the file; written into the report relative to the report's folder.
      caption: one line under the heading.
    """

    path: str
    caption: str


def _number(value: Any) -> str:
    if isinstance(value, int | float) and math.isfinite(value):
        return f"{value:.2f}"
    return "n/a"


def results_table(metrics: Mapping[str, Mapping[str, Any]], kappas: Sequence[int]) -> str:
    """A Markdown table: one row per entry of `metrics`, mAP and mP@k per protocol.

    Args:
      metrics: {row name: {protocol: {"mAP": float, "mP@k": {str(k): float}}}} in percent.
      kappas: the k of the mP@k columns.

    Returns:
      The table (ending with a newline); missing values are "n/a".
    """
    header = ["model"]
    for protocol in PROTOCOLS:
        header.append(f"{protocol} mAP")
        header.extend(f"{protocol} mP@{k}" for k in kappas)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row, entry in metrics.items():
        cells = [ROW_TITLES.get(row, row)]
        for protocol in PROTOCOLS:
            values = entry.get(protocol, {})
            cells.append(_number(values.get("mAP")))
            precisions = values.get("mP@k", {})
            cells.extend(_number(precisions.get(str(k))) for k in kappas)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def text_table(metrics: Mapping[str, Mapping[str, Any]], kappas: Sequence[int]) -> str:
    """The same numbers as `results_table`, aligned for a terminal."""
    names = list(metrics)
    width = max([len(n) for n in names] + [5])
    columns = [f"{p} {c}" for p in PROTOCOLS for c in ["mAP", *(f"mP@{k}" for k in kappas)]]
    lines = [" " * width + "".join(f"{c:>13}" for c in columns)]
    for name in names:
        cells = []
        for protocol in PROTOCOLS:
            values = metrics[name].get(protocol, {})
            cells.append(_number(values.get("mAP")))
            cells.extend(_number(values.get("mP@k", {}).get(str(k))) for k in kappas)
        lines.append(f"{name:<{width}}" + "".join(f"{c:>13}" for c in cells))
    return "\n".join(lines) + "\n"


def _timings_table(stage_seconds: Mapping[str, tuple[float, bool]]) -> str:
    lines = ["| stage | wall time (s) |", "|---|---|"]
    total = 0.0
    for stage, (seconds, ran) in stage_seconds.items():
        total += seconds
        lines.append(f"| {stage} | {seconds:.1f}" + ("" if ran else " (an earlier run)") + " |")
    lines.append(f"| **total** | **{total:.1f}** |")
    return "\n".join(lines) + "\n"


def render_report(
    report_dir: str,
    metrics: Mapping[str, Mapping[str, Any]],
    kappas: Sequence[int],
    figures: Sequence[Figure],
    stage_seconds: Mapping[str, tuple[float, bool]],
    setup: Mapping[str, Any],
    notes: Sequence[str] = (),
) -> str:
    """The Markdown text of the report.

    Args:
      report_dir: folder the report is written to (figure links are relative to it).
      metrics: see `results_table`.
      kappas: k of the mP@k columns.
      figures: PNGs to show, in order.
      stage_seconds: {stage: (wall seconds, whether this run ran it or an earlier one did)},
        in pipeline order.
      setup: what was run (dataset, preset, model, training), shown as a list of `key: value`.
      notes: extra sentences shown after the table (e.g. whether the learning check passed).
    """
    parts = [
        "# DELG demo report\n",
        "Retrieval on the test set (Revisited Oxford/Paris protocols: medium = easy + hard "
        "positives, hard = hard positives only; mAP and mean precision at k in percent).\n",
        results_table(metrics, kappas),
    ]
    if notes:
        parts.append("\n".join(f"- {note}" for note in notes) + "\n")
    parts.append("## Setup\n")
    parts.append("\n".join(f"- {key}: {value}" for key, value in setup.items()) + "\n")
    for figure in figures:
        relative = os.path.relpath(os.path.abspath(figure.path), os.path.abspath(report_dir))
        name = os.path.splitext(os.path.basename(figure.path))[0].replace("_", " ")
        parts.append(f"## {name}\n\n{figure.caption}\n\n![{name}]({relative})\n")
    parts.append("## Stage wall times\n")
    parts.append(_timings_table(stage_seconds))
    return "\n".join(parts)


def write_report(path: str, text: str) -> None:
    """Writes `text` to `path` atomically (a crash leaves the old report or the new one)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write_text_atomically(path, text, sync=False)
