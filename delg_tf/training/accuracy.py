"""Label-range masks and correct-prediction counts, shared by the training step and validation."""

from __future__ import annotations

import tensorflow as tf


def labels_in_range(labels: tf.Tensor, num_classes: int) -> tf.Tensor:
    """`[B]` bool: whether each integer label lies in [0, num_classes)."""
    return tf.logical_and(labels >= 0, labels < num_classes)


def count_correct(
    class_logits: tf.Tensor, labels: tf.Tensor, mask: tf.Tensor | None = None
) -> tf.Tensor:
    """Number of examples whose arg-max class is their label, as a float32 scalar.

    Args:
      class_logits: `[B, N]` logits.
      labels: `[B]` int32 labels.
      mask: `[B]` bool; only examples where it is True count (all of them if None).
    """
    hit = tf.equal(tf.argmax(class_logits, axis=-1, output_type=tf.int32), labels)
    if mask is not None:
        hit = tf.logical_and(hit, mask)
    return tf.reduce_sum(tf.cast(hit, tf.float32))
