"""The training and validation input of a run, split over the strategy's replicas.

The batches come from TFRecords (`data.reader`) or, when `config.tfds_name` is set, from a
prepared TFDS dataset (`data.tfds_source`); both take the same `InputContext` and give the same
`(images, labels)`, so everything below is shared.

tf.distribute's iterators cannot be checkpointed. Where one process feeds every replica, the
training step pulls one per-replica batch per replica from a plain (checkpointable) tf.data
iterator and places them itself, so a resumed run continues from the same input position.
Multi-worker iterator state is per worker and the chief's checkpoint holds only its own, so there
(and on TPU) the input restarts with a fresh seed instead. So does a TFDS dataset whose pipeline
cannot be serialized: TFDS reads TFRecord-format datasets with tf.data ops (checkpointable), but
Parquet-format datasets (and `tfds.testing.mock_data`) through a Python generator.
"""

from __future__ import annotations

import math

import tensorflow as tf
from absl import logging

from delg_tf.data import parser, reader
from delg_tf.training.config import TrainConfig


def build_input(
    files: list[str] | None,
    config: TrainConfig,
    normalization: str,
    *,
    is_training: bool,
    input_context: tf.distribute.InputContext,
    seed: int | None = None,
    repeat: bool | None = None,
    deterministic: bool,
) -> tf.data.Dataset:
    """One input pipeline's `(images, labels)` batches: `[b, S, S, 3]` float32, `[b]` int32.

    Args:
      files: the TFRecords to read; ignored (None) when `config.tfds_name` is set.
      config: the run's settings (batch size, image size, augmentation, TFDS name and keys).
      normalization: the model's input normalization mode.
      is_training: training batches (shuffled, cropped, repeated) from `config.tfds_split`, or
        evaluation batches from `config.tfds_validation_split`.
      input_context, seed, repeat, deterministic: as in `reader.build_dataset`.
    """
    parse = parser.Parser(
        image_size=config.image_size,
        normalization=normalization,
        is_training=is_training,
        augmentation=config.use_augmentation,
        random_flip=config.random_flip,
    )
    common = dict(
        global_batch_size=config.batch_size,
        input_context=input_context,
        seed=seed,
        repeat=repeat,
        deterministic=deterministic,
    )
    if not config.tfds_name:
        return reader.build_dataset(files, parse, **common)
    from delg_tf.data import tfds_source  # only TFDS runs import tensorflow_datasets

    return tfds_source.build_tfds_dataset(
        config.tfds_name,
        parse,
        data_dir=config.tfds_data_dir or None,
        split=config.tfds_split if is_training else config.tfds_validation_split,
        image_key=config.tfds_image_key,
        label_key=config.tfds_label_key,
        **common,
    )


def checkpoints_iterator(config: TrainConfig, strategy: tf.distribute.Strategy) -> bool:
    """Whether the run saves its input iterator: `--checkpoint_iterator`, one input process.

    A TFDS pipeline that reads through Python is found out later (`TrainingInput`).
    """
    return config.checkpoint_iterator and not isinstance(
        strategy, (tf.distribute.MultiWorkerMirroredStrategy, tf.distribute.TPUStrategy)
    )


def is_serializable(dataset: tf.data.Dataset) -> bool:
    """Whether an iterator over `dataset` can be checkpointed (no Python-function state).

    Serializing the pipeline graph fails exactly as saving its iterator would (e.g. "PyFunc is
    stateful"), but without reading an element or writing a file.
    """
    try:
        dataset._as_serialized_graph(  # noqa: SLF001 - what iterator saving does first
            external_state_policy=tf.data.experimental.ExternalStatePolicy.FAIL
        )
    except tf.errors.FailedPreconditionError:
        return False
    return True


class TrainingInput:
    """The training batches of a run, from a checkpointable iterator where one can be.

    Args:
      files: the training TFRecords; None for a TFDS run (`config.tfds_name`).
      config: the run's settings.
      strategy: the run's strategy.
      normalization: the model's input normalization mode.
    """

    def __init__(
        self,
        files: list[str] | None,
        config: TrainConfig,
        strategy: tf.distribute.Strategy,
        normalization: str,
    ):
        self._files = files
        self._config = config
        self._strategy = strategy
        self._normalization = normalization
        self.checkpointable = checkpoints_iterator(config, strategy)
        if self.checkpointable and config.tfds_name:
            self.checkpointable = is_serializable(self._dataset_fn(config.seed)(self._context()))
            if not self.checkpointable:
                logging.warning(
                    "The input pipeline of --tfds_name=%s cannot be checkpointed (TFDS reads it "
                    "through Python); a resumed run restarts its input with a fresh shuffle.",
                    config.tfds_name,
                )

    def _context(self) -> tf.distribute.InputContext:
        # One pipeline yielding the per-replica batches in turn; `next_batch` places them.
        return tf.distribute.InputContext(
            num_input_pipelines=1,
            input_pipeline_id=0,
            num_replicas_in_sync=self._strategy.num_replicas_in_sync,
        )

    def iterator(self, seed: int):
        """A fresh iterator over the shuffled batches; checkpointable if `self.checkpointable`."""
        if not self.checkpointable:
            return iter(self._strategy.distribute_datasets_from_function(self._dataset_fn(seed)))
        return iter(self._dataset_fn(seed)(self._context()))

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
        def dataset_fn(input_context):
            return build_input(
                self._files,
                self._config,
                self._normalization,
                is_training=True,
                input_context=input_context,
                seed=seed,
                deterministic=self._config.deterministic_input,
            )

        return dataset_fn


def validation_dataset(
    files: list[str] | None,
    config: TrainConfig,
    strategy: tf.distribute.Strategy,
    normalization: str,
) -> tf.distribute.DistributedDataset:
    """`config.resolved_eval_batches` global batches of the validation input, in order, once.

    The validation input is `files`, or `config.tfds_validation_split` for a TFDS run.
    """

    def dataset_fn(input_context):
        # The pipeline yields per-replica batches and each global batch takes one per replica it
        # feeds, so `resolved_eval_batches` global batches are this many per-replica ones.
        replicas = max(1, input_context.num_replicas_in_sync // input_context.num_input_pipelines)
        global_batches = math.ceil(config.resolved_eval_batches / input_context.num_input_pipelines)
        batches = global_batches * replicas
        return build_input(
            files,
            config,
            normalization,
            is_training=False,
            input_context=input_context,
            repeat=False,
            deterministic=True,
        ).take(batches)

    return strategy.distribute_datasets_from_function(dataset_fn)
