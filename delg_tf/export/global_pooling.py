"""SuperGlobal pooling of the global descriptor at export (Shao et al., ICCV 2023, Sec. 3.2).

Optional per export and off by default, so an export computes the official DELG descriptor
unless asked otherwise. Three independent options, recorded in the export's settings asset
(`global_pooling`), no retraining:

- GeM+: GeM over conv5 with a larger fixed power, p = 4.6 (the authors' `modules/coarse_retrieval/
  gemp.py` default, the paper's GeM+ value) instead of the trained p (3 in DELG).
- Regional GeM: before pooling, each conv5 cell is mixed half-and-half with the power mean
  (p_r = 2.5) of its 5 x 5 neighbourhood (reflection padding): x <- 0.5 * x + 0.5 * (mean over
  the window of x^p_r)^(1/p_r) (`rgem.py` defaults `pr=2.5, size=5`).
- Scale-GeM: the per-scale descriptors are L2-normalised and combined by their element-wise
  maximum instead of the official sum (`sgem.py` with its default `infinity=True`), then
  L2-normalised as before.

The whitening layer of the trained global head is applied to the new pooled vector unchanged.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import tensorflow as tf

# SuperGlobal repository defaults (modules/coarse_retrieval/gemp.py, rgem.py).
GEM_PLUS_POWER = 4.6
REGIONAL_POWER = 2.5
REGIONAL_SIZE = 5
SCALE_AGGREGATIONS = ("sum", "max")


@dataclasses.dataclass(frozen=True)
class GlobalPooling:
    """How the global descriptor is pooled and combined over scales.

    Attributes:
      gem_power: GeM power at export; None keeps the trained head's GeM (the official DELG).
      regional_gem: apply regional GeM to conv5 before pooling.
      regional_power: regional GeM's power p_r.
      regional_size: regional GeM's window (odd).
      scale_aggregation: "sum" (official) or "max" (Scale-GeM) over L2-normalised scales.
    """

    gem_power: float | None = None
    regional_gem: bool = False
    regional_power: float = REGIONAL_POWER
    regional_size: int = REGIONAL_SIZE
    scale_aggregation: str = "sum"

    def __post_init__(self):
        if self.gem_power is not None and not self.gem_power > 0:
            raise ValueError(f"global_pooling gem_power must be positive, got {self.gem_power}")
        if not self.regional_power > 0:
            raise ValueError(f"global_pooling regional_power must be > 0: {self.regional_power}")
        if self.regional_size < 1 or self.regional_size % 2 == 0:
            raise ValueError(f"global_pooling regional_size must be odd: {self.regional_size}")
        if self.scale_aggregation not in SCALE_AGGREGATIONS:
            raise ValueError(
                f"global_pooling scale_aggregation must be one of {SCALE_AGGREGATIONS}, "
                f"got {self.scale_aggregation!r}"
            )

    @property
    def changes_pooling(self) -> bool:
        """Whether conv5 is pooled differently from the trained head."""
        return self.gem_power is not None or self.regional_gem

    @classmethod
    def from_dict(cls, value: dict[str, Any] | None, source: str = "settings") -> GlobalPooling:
        """From the settings' `global_pooling` entry (None: the official pooling)."""
        if value is None:
            return cls()
        try:
            return cls(**value)
        except TypeError as e:
            raise ValueError(f"{source}: global_pooling {value}: {e}") from e


def gem(x: tf.Tensor, power: float, eps: float = 1e-6) -> tf.Tensor:
    """GeM over the spatial axes, divided by the spatial max first (no overflow at large p).

    Args:
      x: float [B, H, W, C].
      power: p.
      eps: clamp of the activations (the trained head's 1e-6).

    Returns:
      float [B, C].
    """
    x = tf.maximum(x, eps)
    scale = tf.reduce_max(x, axis=[1, 2], keepdims=True)
    pooled = tf.reduce_mean(tf.pow(x / scale, power), axis=[1, 2])
    return tf.pow(pooled, 1.0 / power) * tf.squeeze(scale, axis=[1, 2])


def regional_gem(x: tf.Tensor, power: float = REGIONAL_POWER, size: int = REGIONAL_SIZE):
    """0.5 * x + 0.5 * (power mean of each size x size window), reflection-padded.

    Args:
      x: float [B, H, W, C] non-negative map (conv5 after ReLU).
      power: p_r.
      size: odd window side.

    Returns:
      float [B, H, W, C].
    """
    pad = (size - 1) // 2
    # Reflection needs a side > pad; a smaller map (tiny images) repeats its edge instead.
    small = tf.logical_or(tf.shape(x)[1] <= pad, tf.shape(x)[2] <= pad)
    paddings = [[0, 0], [pad, pad], [pad, pad], [0, 0]]
    padded = tf.cond(
        small,
        lambda: _edge_pad(x, pad),
        lambda: tf.pad(x, paddings, mode="REFLECT"),
    )
    powered = tf.pow(tf.maximum(padded, 0.0), power)
    window = tf.nn.avg_pool2d(powered, ksize=size, strides=1, padding="VALID")
    return 0.5 * tf.pow(window, 1.0 / power) + 0.5 * x


def _edge_pad(x: tf.Tensor, pad: int) -> tf.Tensor:
    for _ in range(pad):
        x = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="SYMMETRIC")
    return x


def pooled_global_descriptor(conv5: tf.Tensor, head, pooling: GlobalPooling) -> tf.Tensor:
    """The trained global head's whitening applied to conv5 pooled as `pooling` says.

    Args:
      conv5: float [B, h, w, C5] (the model's `conv5` output).
      head: the model's `GlobalHead` (its `pool.eps` and `embedding` layer are used).
      pooling: the pooling options (`changes_pooling` must be true).

    Returns:
      float32 [B, D] raw (not normalised) global descriptor.
    """
    x = tf.cast(conv5, tf.float32)
    if pooling.regional_gem:
        x = regional_gem(x, pooling.regional_power, pooling.regional_size)
    if pooling.gem_power is not None:
        power = pooling.gem_power
    elif head.pool.p is not None:  # a trained p, clipped as the head clips it
        power = tf.clip_by_value(
            tf.cast(head.pool.p, tf.float32), head.pool.min_power, head.pool.max_power
        )
    else:
        power = head.pool.power
    pooled = gem(x, power, head.pool.eps)
    return tf.cast(head.embedding(tf.cast(pooled, head.embedding.compute_dtype)), tf.float32)
