"""Runs the benchmark parts in order in one process and gathers what the JSON file records."""

from __future__ import annotations

import dataclasses
import os
import resource
import tempfile
import time
from collections.abc import Iterable
from typing import Any

from delg_tf.benchmark.extraction_part import run_extraction
from delg_tf.benchmark.machine import machine_description
from delg_tf.benchmark.matmul_peaks import matmul_peaks
from delg_tf.benchmark.model_part import run_model
from delg_tf.benchmark.pipeline_part import add_pipeline_headroom, run_pipeline
from delg_tf.benchmark.report import Report, print_table
from delg_tf.benchmark.reranking_part import run_reranking
from delg_tf.benchmark.search_part import run_search
from delg_tf.benchmark.settings import Settings
from delg_tf.benchmark.training_free_part import run_training_free
from delg_tf.benchmark.training_part import run_training
from delg_tf.benchmark.training_reference_part import run_training_reference

# In running order: the numpy-only parts first, so their large arrays are freed before
# TensorFlow's allocator grows.
PARTS = (
    "reranking", "training_free", "search", "pipeline", "model", "training",
    "training_reference", "extraction",
)  # fmt: skip
# What a run without --parts measures: training_reference needs the benchmark extra (tf-keras).
DEFAULT_PARTS = tuple(p for p in PARTS if p != "training_reference")


@dataclasses.dataclass
class BenchmarkRun:
    """What one run measured, and on what.

    Attributes:
      settings: the sizes it ran at.
      parts: the parts it ran, in running order.
      report: every figure and skipped measurement.
      machine: `machine_description()` taken before the first part.
      started_unix: wall-clock start (seconds since the epoch).
      wall_seconds: duration of the whole run.
      part_seconds: part -> its duration.
      peak_rss_gib_after_part: part -> the process's peak RSS once it finished.
      max_rss_gib: the process's peak RSS, all parts included.
      load_average_after: 1/5/15-minute load average after the run, or None when unknown.
    """

    settings: Settings
    parts: list[str]
    report: Report
    machine: dict[str, Any]
    started_unix: float
    wall_seconds: float
    part_seconds: dict[str, float]
    peak_rss_gib_after_part: dict[str, float]
    max_rss_gib: float
    load_average_after: list[float] | None

    def to_json(self, command: str, quick: bool) -> dict[str, Any]:
        """The benchmark JSON document.

        Args:
          command: the command line that ran the benchmark.
          quick: whether the settings are --quick sizes (recorded with them).
        """
        return {
            "command": command,
            "started_unix": self.started_unix,
            "wall_seconds": self.wall_seconds,
            "part_seconds": self.part_seconds,
            "load_average_after": self.load_average_after,
            "max_rss_gib": self.max_rss_gib,
            "peak_rss_gib_after_part": self.peak_rss_gib_after_part,
            "machine": self.machine,
            "settings": dataclasses.asdict(self.settings) | {"quick": quick},
            "parts": self.parts,
            "figures": [f.to_json() for f in self.report.figures],
            "skipped": self.report.skipped,
        }


def _peak_rss_gib() -> float:
    # ru_maxrss is in KiB on Linux: the process peak so far.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _warn_about_load(machine: dict[str, Any]) -> None:
    load = machine["load_average_1_5_15"]
    print(f"load average before: {load}", flush=True)
    if load and machine["logical_cores"] and load[0] > 0.5 * machine["logical_cores"]:
        print(
            f"WARNING: 1-minute load {load[0]:.1f} on {machine['logical_cores']} cores: other "
            "processes share the CPU and the figures will not be the machine's.",
            flush=True,
        )


def run_benchmark(
    settings: Settings, parts: Iterable[str], work_dir: str | None = None
) -> BenchmarkRun:
    """Runs `parts` in the order of `PARTS`, printing each figure, then the table and totals.

    Args:
      settings: the sizes to measure at.
      parts: any of `PARTS`.
      work_dir: where the scratch directory (TFRecords, exports) is made; None for the
        system's temporary directory. The scratch directory is removed at the end.

    Returns:
      The run's figures, timings, peak memory and machine description.

    Raises:
      ValueError: a part is not one of `PARTS`.
    """
    parts = list(parts)
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        raise ValueError(f"unknown parts {unknown}; choose from {','.join(PARTS)}")
    start = time.time()
    machine = machine_description()
    _warn_about_load(machine)
    report = Report()
    parts = [p for p in PARTS if p in parts]
    part_seconds, peak_rss = {}, {}
    with tempfile.TemporaryDirectory(prefix="delg_benchmark_", dir=work_dir) as scratch:
        peaks, cache = {}, {}
        for part in parts:
            part_start = time.time()
            if part in ("model", "training", "extraction") and not peaks:
                peaks = matmul_peaks(settings, report)
            if part == "reranking":
                run_reranking(settings, report)
            elif part == "training_free":
                run_training_free(settings, report)
            elif part == "search":
                run_search(settings, report)
            elif part == "pipeline":
                run_pipeline(settings, report, scratch)
            elif part == "model":
                run_model(settings, report, scratch, cache)
            elif part == "training":
                run_training(settings, report, scratch, peaks, cache)
            elif part == "training_reference":
                run_training_reference(settings, report)
            elif part == "extraction":
                run_extraction(settings, report, scratch, peaks)
            part_seconds[part] = time.time() - part_start
            # Shows which part set the overall peak.
            peak_rss[part] = _peak_rss_gib()
        add_pipeline_headroom(settings, report)
    wall = time.time() - start
    print_table(report)
    try:
        load_after = list(os.getloadavg())
    except OSError:
        load_after = None
    max_rss_gib = _peak_rss_gib()
    print(f"\nwall time {wall:.0f} s; peak RSS {max_rss_gib:.1f} GiB; load average before "
          f"{machine['load_average_1_5_15']}, after {load_after}")  # fmt: skip
    return BenchmarkRun(
        settings=settings,
        parts=parts,
        report=report,
        machine=machine,
        started_unix=start,
        wall_seconds=wall,
        part_seconds=part_seconds,
        peak_rss_gib_after_part=peak_rss,
        max_rss_gib=max_rss_gib,
        load_average_after=load_after,
    )
