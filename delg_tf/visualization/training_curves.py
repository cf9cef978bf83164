"""Training curves (losses, accuracies, learning rate) as a PNG, from a run's `metrics.jsonl`.

The training loop appends one JSON object per report interval to `<logdir>/metrics.jsonl`
(`delg_tf/training/summaries.py`): `{"step", "total", "global_ce", "attention_ce",
"reconstruction_mse", "global_accuracy", "attention_accuracy", "learning_rate", ...}`, and after
each validation `{"step", "validation": {"global_accuracy", "attention_accuracy", ...}}`. The same
numbers are in the TensorBoard event files; the JSON lines need no TensorFlow to read.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

METRICS_FILE = "metrics.jsonl"

# (panel title, [(key, label)]) of the training entries.
_PANELS = (
    ("losses", (("total", "total"), ("global_ce", "global (ArcFace) CE"))),
    (
        "local-branch losses",
        (("attention_ce", "attention CE"), ("reconstruction_mse", "reconstruction MSE")),
    ),
    ("accuracy", (("global_accuracy", "train global"), ("attention_accuracy", "train attention"))),
    ("learning rate", (("learning_rate", "learning rate"),)),
)


def read_metrics(path: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Reads a `metrics.jsonl` file.

    Args:
      path: the file, or a training logdir holding `metrics.jsonl`.

    Returns:
      (training entries, validation entries), each sorted by step; a validation entry is
      `{"step": int, **validation values}`. When a resumed run logged a step twice, the later
      line wins.

    Raises:
      FileNotFoundError: naming the path, if there is no such file.
      ValueError: naming the file and line, for a line that is not a JSON object with a step.
    """
    if os.path.isdir(path):
        path = os.path.join(path, METRICS_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no training metrics file {path}")
    train: dict[int, dict[str, Any]] = {}
    validation: dict[int, dict[str, Any]] = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as e:
                if number > 1 and not line.endswith("\n"):
                    break  # a last line cut by a crash mid-write: keep what came before
                raise ValueError(f"{path}:{number}: not JSON ({e})") from e
            step = entry.get("step") if isinstance(entry, dict) else None
            if isinstance(step, bool) or not isinstance(step, int):
                raise ValueError(f"{path}:{number}: expected a JSON object with an int 'step'")
            if isinstance(entry.get("validation"), dict):
                validation[step] = {"step": step, **entry["validation"]}
            else:
                train[step] = entry
    return [train[s] for s in sorted(train)], [validation[s] for s in sorted(validation)]


def _series(entries: list[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    steps, values = [], []
    for entry in entries:
        value = entry.get(key)
        if isinstance(value, int | float) and math.isfinite(value):
            steps.append(entry["step"])
            values.append(float(value))
    return steps, values


def curves_figure(
    train: list[dict[str, Any]], validation: list[dict[str, Any]], title: str = ""
) -> Figure:
    """Draws one panel per group of metrics against the training step.

    Args:
      train: training entries (see `read_metrics`).
      validation: validation entries; their accuracies join the accuracy panel.
      title: figure title.

    Returns:
      A matplotlib Figure with an Agg canvas (2 x 2 panels).
    """
    figure = Figure(figsize=(11, 7.5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.subplots(2, 2).ravel()
    for axis, (panel, keys) in zip(axes, _PANELS, strict=True):
        for key, label in keys:
            steps, values = _series(train, key)
            if steps:
                axis.plot(steps, values, marker="." if len(steps) < 30 else None, label=label)
        if panel == "accuracy":
            for key, label in (
                ("global_accuracy", "validation global"),
                ("attention_accuracy", "validation attention"),
            ):
                steps, values = _series(validation, key)
                if steps:
                    axis.plot(steps, values, marker="o", linestyle="--", label=label)
            axis.set_ylim(-0.02, 1.02)
        axis.set_title(panel)
        axis.set_xlabel("step")
        axis.grid(alpha=0.3)
        if axis.lines:
            axis.legend(fontsize=8)
        else:
            axis.text(0.5, 0.5, "no data", ha="center", va="center", transform=axis.transAxes)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure


def write_training_curves(metrics_path: str, output_path: str, title: str = "") -> int:
    """Reads a run's metrics and writes its curves as a PNG.

    Args:
      metrics_path: `metrics.jsonl`, or the training logdir holding it.
      output_path: PNG to write (its folder is created).
      title: figure title.

    Returns:
      The number of training entries drawn.

    Raises:
      FileNotFoundError, ValueError: see `read_metrics`; ValueError also when the file holds
        no training entry.
    """
    train, validation = read_metrics(metrics_path)
    if not train:
        raise ValueError(f"{metrics_path}: no training entries to draw")
    figure = curves_figure(train, validation, title)
    os.makedirs(os.path.dirname(os.path.abspath(output_path)), exist_ok=True)
    figure.savefig(output_path, format="png")
    return len(train)
