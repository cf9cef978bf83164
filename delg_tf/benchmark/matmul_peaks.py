"""The matmul peak: GFLOP/s of a square matmul, the yardstick of every "fraction of peak"."""

from __future__ import annotations

from collections.abc import Sequence

from delg_tf.benchmark.report import Report, figure
from delg_tf.benchmark.settings import Settings


def matmul_peaks(
    s: Settings, report: Report, dtypes: Sequence[str] = ("float32", "bfloat16")
) -> dict[str, float]:
    """Adds a `matmul_peak.<dtype>` figure per dtype and returns their medians in GFLOP/s."""
    import tensorflow as tf

    from delg_tf.benchmark.extraction_benchmark import matmul_gflops

    peaks = {}
    for name in dtypes:
        dtype = {"float32": tf.float32, "bfloat16": tf.bfloat16}[name]
        runs = [matmul_gflops(s.matmul_size, dtype, runs=1) for _ in range(max(5, s.repeats))]
        peak = report.add(
            figure(f"matmul_peak.{name}", runs, "GFLOP/s",
                   f"{s.matmul_size}x{s.matmul_size} matmul in a tf.function")
        )  # fmt: skip
        peaks[name] = peak.value
    return peaks
