"""The training and validation input of a run, split over the strategy's replicas.

tf.distribute's iterators cannot be checkpointed. Where one process feeds every replica, the
training step pulls one per-replica batch per replica from a plain (checkpointable) tf.data
iterator and places them itself, so a resumed run continues from the same input position.
Multi-worker iterator state is per worker and the chief's checkpoint holds only its own, so there
(and on TPU) the input restarts with a fresh seed instead.
"""

from __future__ import annotations

import math

import tensorflow as tf

from delg_tf.data import reader
from delg_tf.training.config import TrainConfig


class TrainingInput:
    """The training batches of a run, from a checkpointable iterator where one can be.

    Args:
      files: the training TFRecords.
      config: the run's settings.
      strategy: the run's strategy.
      normalization: the model's input normalization mode.
    """

    def __init__(
        self,
        files: list[str],
        config: TrainConfig,
        strategy: tf.distribute.Strategy,
        normalization: str,
    ):
        self._files = files
        self._config = config
        self._strategy = strategy
        self._normalization = normalization
        self.checkpointable = config.checkpoint_iterator and not isinstance(
            strategy, (tf.distribute.MultiWorkerMirroredStrategy, tf.distribute.TPUStrategy)
        )

    def iterator(self, seed: int):
        """A fresh iterator over the shuffled batches; checkpointable if `self.checkpointable`."""
        if not self.checkpointable:
            return iter(self._strategy.distribute_datasets_from_function(self._dataset_fn(seed)))
        # One pipeline yielding the per-replica batches in turn; `next_batch` places them.
        context = tf.distribute.InputContext(
            num_input_pipelines=1,
            input_pipeline_id=0,
            num_replicas_in_sync=self._strategy.num_replicas_in_sync,
        )
        return iter(self._dataset_fn(seed)(context))

    def next_batch(self, iterator):
        """The next `(images, labels)` per-replica values (`[b, S, S, 3]`, `[b]` per replica)."""
        if not self.checkpointable:
            return next(iterator)
        # One per-replica batch per replica, in replica order: the same examples, split the same
        # way, as distribute_datasets_from_function gives.
        batches = [next(iterator) for _ in range(self._strategy.num_replicas_in_sync)]
        return tuple(
            self._strategy.experimental_distribute_values_from_function(
                lambda context, i=i: batches[context.replica_id_in_sync_group][i]
            )
            for i in range(2)
        )

    def _dataset_fn(self, seed: int):
        config = self._config

        def dataset_fn(input_context):
            return reader.build_dataset(
                self._files,
                global_batch_size=config.batch_size,
                is_training=True,
                image_size=config.image_size,
                normalization=self._normalization,
                input_context=input_context,
                seed=seed,
                augmentation=config.use_augmentation,
                random_flip=config.random_flip,
                deterministic=config.deterministic_input,
            )

        return dataset_fn


def validation_dataset(
    files: list[str],
    config: TrainConfig,
    strategy: tf.distribute.Strategy,
    normalization: str,
) -> tf.distribute.DistributedDataset:
    """`config.resolved_eval_batches` batches of the validation files, in order, once."""

    def dataset_fn(input_context):
        batches = math.ceil(config.resolved_eval_batches / input_context.num_input_pipelines)
        return reader.build_dataset(
            files,
            global_batch_size=config.batch_size,
            is_training=False,
            image_size=config.image_size,
            normalization=normalization,
            input_context=input_context,
            repeat=False,
            deterministic=True,
        ).take(batches)

    return strategy.distribute_datasets_from_function(dataset_fn)
