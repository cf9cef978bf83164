"""Dtype rules for the heads that must not run in 16 bits (GeM, ArcFace, logits).

They compute in float32, or in float64 when the global Keras policy is float64 (used by the
replica-invariance tests to compare gradients without float32 rounding noise).
"""

from __future__ import annotations

import keras
import tensorflow as tf


def head_dtype() -> str:
    """Dtype policy name for precision-sensitive layers under the current global policy."""
    return "float64" if keras.config.dtype_policy().compute_dtype == "float64" else "float32"


def at_least_float32(x: tf.Tensor) -> tf.Tensor:
    """Casts 16-bit floats to float32; leaves float32 and float64 unchanged."""
    return x if x.dtype in (tf.float32, tf.float64) else tf.cast(x, tf.float32)
