"""Validation during training: global and attention accuracy, without the ArcFace margin.

Uses the same forward pass as training (the official attention accuracy bypassed the
autoencoder). Unlabelled or out-of-range validation records are not counted.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from delg_tf.models import DelgModel
from delg_tf.training.accuracy import count_correct, labels_in_range


class Validation:
    """Accuracy of `model` on the batches of a distributed validation dataset.

    Args:
      model: the model being trained.
      strategy: the strategy it was built in.
      dataset: distributed `(images [b, S, S, 3], labels [b])` batches, finite.
      num_classes: labels outside [0, num_classes) are not counted.
    """

    def __init__(
        self,
        model: DelgModel,
        strategy: tf.distribute.Strategy,
        dataset: tf.distribute.DistributedDataset,
        num_classes: int,
    ):
        self._model = model
        self._strategy = strategy
        self._dataset = dataset
        self._num_classes = num_classes
        self._step = tf.function(self._counts, reduce_retracing=True)

    def __call__(self) -> dict[str, float]:
        """`{"global_accuracy", "attention_accuracy", "examples"}` over the whole dataset."""
        totals = np.zeros(3)
        for images, labels in self._dataset:
            totals += self._step(images, labels).numpy()
        count = max(totals[2], 1.0)
        return {
            "global_accuracy": totals[0] / count,
            "attention_accuracy": totals[1] / count,
            "examples": totals[2],
        }

    def _counts(self, images, labels):
        """`[3]`: correct global, correct attention, counted examples, summed over replicas."""

        def replica_counts(images, labels):
            outputs = self._model(images, training=False)
            logits = self._model.global_logits(outputs["global_descriptor"], training=False)
            labels = tf.cast(labels, tf.int32)
            valid = labels_in_range(labels, self._num_classes)
            count = tf.reduce_sum(tf.cast(valid, tf.float32))
            return tf.stack(
                [
                    count_correct(logits, labels, valid),
                    count_correct(outputs["attention_logits"], labels, valid),
                    count,
                ]
            )

        per_replica = self._strategy.run(replica_counts, args=(images, labels))
        return self._strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)
