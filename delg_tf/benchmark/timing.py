"""Timing helpers: timed runs of a callable, their median, and freeing memory between parts.

A figure is a list of timed runs and its median.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any


def timed_runs(fn: Callable[[], Any], runs: int, warmup: int = 1) -> list[float]:
    """Wall seconds of `runs` calls of `fn` after `warmup` untimed calls.

    `fn` must block until its work is done (e.g. call `.numpy()` on TF results).
    """
    if runs < 1:
        raise ValueError(f"runs must be >= 1, got {runs}")
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def median(values: Sequence[float]) -> float:
    """Median of a non-empty sequence."""
    if not values:
        raise ValueError("median of no values")
    return float(statistics.median(values))


def release_memory() -> None:
    """Drops Keras global state and collects garbage between large measurements."""
    try:
        import keras

        keras.backend.clear_session()
    except ImportError:  # pragma: no cover - keras is a dependency
        pass
    gc.collect()
