"""Timing helpers: the median of timed runs, and freeing memory between parts."""

from __future__ import annotations

import gc
import statistics
from collections.abc import Sequence


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
