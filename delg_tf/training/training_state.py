"""What a run trains and checkpoints: the model, its optimizer and the global step.

All three are created inside `strategy.scope()`, under the run's Keras dtype policy.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator

import keras
import tensorflow as tf

from delg_tf.models import DelgModel
from delg_tf.models.model_config import ModelConfig
from delg_tf.training.config import TrainConfig
from delg_tf.training.optimizer import build_optimizer


@dataclasses.dataclass
class TrainingState:
    """The trainable state of a run.

    Attributes:
      model: the `DelgModel`, built for `[None, S, S, 3]` inputs.
      optimizer: `build_optimizer(config)`, with its slots built.
      step: int64 global step (optimizer updates applied).
    """

    model: DelgModel
    optimizer: keras.optimizers.Optimizer
    step: tf.Variable


@contextlib.contextmanager
def global_dtype_policy(name: str | None) -> Iterator[None]:
    """Sets the global Keras dtype policy inside the block (None: leaves it), then restores it."""
    previous = keras.mixed_precision.global_policy()
    if name is not None:
        keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def model_config(
    config: TrainConfig, strategy: tf.distribute.Strategy, resuming: bool
) -> ModelConfig:
    """`config.model` as this run builds it: ImageNet weights only for a fresh run, cross-replica
    BatchNorm only when there are several replicas."""
    return dataclasses.replace(
        config.model,
        backbone_weights=None if resuming else config.model.backbone_weights,
        synchronized_bn=config.model.synchronized_bn and strategy.num_replicas_in_sync > 1,
    )


def build_training_state(
    config: TrainConfig, strategy: tf.distribute.Strategy, resuming: bool
) -> TrainingState:
    """Creates the model, optimizer and step in `strategy`'s scope.

    Args:
      config: the run's settings.
      strategy: the run's strategy.
      resuming: a checkpoint will be restored; the backbone then comes from it, so
        `config.model.backbone_weights` (`--imagenet_checkpoint`) is not read.
    """
    policy = "mixed_bfloat16" if config.mixed_precision else None
    with global_dtype_policy(policy), strategy.scope():
        model = DelgModel(**dataclasses.asdict(model_config(config, strategy, resuming)))
        model.build((None, config.image_size, config.image_size, 3))
        optimizer = build_optimizer(config)
        # Built inside the scope: slot variables created lazily in the first step fail under
        # MirroredStrategy ("You must feed a value for placeholder tensor ..." on step 1).
        optimizer.build(model.trainable_variables)
        step = tf.Variable(
            0,
            dtype=tf.int64,
            trainable=False,
            name="step",
            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
        )
    return TrainingState(model, optimizer, step)
