"""Figures, their targets and judging, the report that prints them, the table and the JSON file."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable, Sequence
from typing import Any

from delg_tf.benchmark.timing import median


@dataclasses.dataclass
class Figure:
    """One reported figure: the value of each run, its unit, and the target it is judged by.

    Attributes:
      name: dotted key, e.g. "training.r50_float32.images_per_second".
      runs: the value of each timed run, in `unit`.
      unit: e.g. "images/s", "ms/query", "ratio".
      target: text of the target ("" if none); `met` is None then.
      met: whether the median meets the target.
      note: what exactly was measured.
    """

    name: str
    runs: list[float]
    unit: str
    target: str = ""
    met: bool | None = None
    note: str = ""

    @property
    def value(self) -> float:
        return median(self.runs)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "runs": [float(r) for r in self.runs],
            "unit": self.unit,
            "target": self.target,
            "met": self.met,
            "note": self.note,
        }


class Report:
    """Collects figures and skipped parts, printing each figure as it is measured."""

    def __init__(self):
        self.figures: list[Figure] = []
        self.skipped: list[dict[str, str]] = []

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        print(row(figure), flush=True)
        return figure

    def skip(self, what: str, reason: str) -> None:
        self.skipped.append({"what": what, "reason": reason})
        print(f"SKIPPED {what}: {reason}", flush=True)

    def get(self, name: str) -> Figure | None:
        return next((f for f in self.figures if f.name == name), None)


def judge(value: float, op: str, bound: float) -> bool:
    """Whether `value` meets the target "op bound" (op ">=" or "<=")."""
    return value >= bound if op == ">=" else value <= bound


def figure(
    name: str,
    runs: Iterable[float],
    unit: str,
    note: str = "",
    op: str | None = None,
    bound: float | None = None,
) -> Figure:
    """A figure; with (op, bound) its target is "op bound" and `met` is judged on the median."""
    out = Figure(name, [float(r) for r in runs], unit, note=note)
    if op is not None:
        out.target = f"{op} {bound:g}"
        out.met = judge(out.value, op, bound)
    return out


def paired_ratio(numerators: Sequence[float], denominators: Sequence[float]) -> list[float]:
    """Run-by-run ratios of two figures whose runs were timed in turn."""
    return [n / d for n, d in zip(numerators, denominators, strict=True)]


def row(f: Figure) -> str:
    """One table line: name, median, unit, target and whether it is met."""
    met = "" if f.met is None else ("yes" if f.met else "NO")
    return f"{f.name:<58} {f.value:>12.4g} {f.unit:<10} {f.target:<8} {met}"


def print_table(report: Report) -> None:
    """Prints every figure of `report`, then every skipped measurement with its reason."""
    print()
    print(f"{'figure':<58} {'value':>12} {'unit':<10} {'target':<8} met")
    print("-" * 96)
    for f in report.figures:
        print(row(f))
    for skipped in report.skipped:
        print(f"{skipped['what']:<58} {'skipped':>12}  {skipped['reason']}")


def write_json(path: str, document: dict) -> None:
    """Writes `document` to `path` atomically (a temporary file, then a rename)."""
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(document, f, indent=2)
    os.replace(tmp, path)
