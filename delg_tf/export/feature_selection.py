"""Local-feature selection: an absolute attention threshold, then the top-k by attention.

This is what the official export does with `non_max_suppression(iou=1.0)`: at IoU 1.0 nothing is
suppressed, so the selection is a threshold followed by the `max_feature_num` highest scores,
sorted by score (`training/model/export_local_and_global_model.py`).
"""

from __future__ import annotations

import tensorflow as tf


def threshold_indices(scores: tf.Tensor, abs_thres: tf.Tensor) -> tf.Tensor:
    """Indices of the scores at or above an absolute threshold.

    Args:
      scores: float [N] attention scores.
      abs_thres: float scalar; a score equal to it is kept (as in the official code).

    Returns:
      int64 [M] indices into `scores`, increasing.
    """
    return tf.reshape(tf.where(scores >= tf.cast(abs_thres, scores.dtype)), [-1])


def top_k_indices(scores: tf.Tensor, max_feature_num: tf.Tensor) -> tf.Tensor:
    """Indices of the `max_feature_num` highest scores, highest first.

    Ties keep their input order. A negative `max_feature_num` selects nothing.

    Args:
      scores: float [N] attention scores.
      max_feature_num: int scalar.

    Returns:
      int32 [min(N, max(max_feature_num, 0))] indices into `scores`.
    """
    count = tf.minimum(tf.size(scores), tf.maximum(tf.cast(max_feature_num, tf.int32), 0))
    return tf.math.top_k(scores, k=count, sorted=True).indices
