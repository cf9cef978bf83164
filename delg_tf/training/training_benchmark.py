"""Training step timings: bare backbone, DELG forward+losses+backward, and the whole training loop.

Three measurements at the same image size and batch, so their ratios isolate one cost each:

- `backbone_step_seconds`: the backbone alone (for ResNet50 the keras.applications network,
  include_top=False) with a trivial loss on conv5, backward, SGD-momentum update.
- `delg_step_seconds`: `DelgModel` forward, ArcFace logits, the three DELG losses, backward and
  the same update, on a constant in-memory batch: the "bare" DELG step. Its ratio to the first is
  what the DELG heads and losses add.
- `trainer_step_seconds`: `Trainer.run_chunk`, i.e. the real loop (TFRecord input pipeline,
  strategy.run, all-reduce, global-norm clipping, learning-rate schedule, health checks). Its
  ratio to `delg_step_seconds` is what the loop adds.

Every function builds its own model (under the requested dtype policy) and returns per-step
seconds of each timed run, after untimed warm-up calls (tracing, oneDNN kernel selection).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from delg_tf.models import DelgModel
from delg_tf.models.backbones import get_backbone
from delg_tf.training.config import TrainConfig
from delg_tf.training.train_step import forward_backward
from delg_tf.training.trainer import Trainer
from delg_tf.training.training_state import global_dtype_policy

POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16"}


@contextlib.contextmanager
def dtype_policy(compute_dtype: str) -> Iterator[None]:
    """Builds models under float32 or mixed_bfloat16, restoring the previous global policy."""
    if compute_dtype not in POLICIES:
        raise ValueError(f"compute_dtype must be one of {list(POLICIES)}, got {compute_dtype!r}")
    with global_dtype_policy(POLICIES[compute_dtype]):
        yield


class _MomentumSGD:
    """SGD with momentum 0.9 as two assigns per variable (keras SGD's arithmetic).

    Keras 3's `optimizer.apply` inside a `tf.function` keeps every model's variables and slots
    alive after the model is deleted (~1.3 GB per model with an 81313-class ArcFace), which a
    process measuring several models cannot afford; these plain variables are freed.
    """

    def __init__(self, variables, learning_rate: float = 0.01, momentum: float = 0.9):
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.slots = [tf.Variable(tf.zeros_like(v), trainable=False) for v in variables]

    def apply(self, grads, variables) -> None:
        for grad, variable, slot in zip(grads, variables, self.slots, strict=True):
            if grad is None:
                continue
            grad = tf.cast(grad, slot.dtype)
            slot.assign(self.momentum * slot - self.learning_rate * grad)
            variable.assign_add(slot)


def _time_step(step, args, runs: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        step(*args).numpy()
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        step(*args).numpy()
        seconds.append(time.perf_counter() - start)
    return seconds


def _batch(batch_size: int, image_size: int, num_classes: int, seed: int):
    rng = np.random.default_rng(seed)
    images = tf.constant(rng.uniform(-1, 1, [batch_size, image_size, image_size, 3]), tf.float32)
    labels = tf.constant(rng.integers(0, num_classes, batch_size), tf.int32)
    return images, labels


def backbone_step_seconds(
    backbone: str = "resnet50",
    image_size: int = 512,
    batch_size: int = 8,
    runs: int = 3,
    warmup: int = 1,
    compute_dtype: str = "float32",
    seed: int = 0,
) -> list[float]:
    """Seconds per forward+backward+SGD step of the bare backbone (loss: mean of conv5).

    Args:
      backbone: registry name; "resnet50" is keras.applications.ResNet50(include_top=False).
      image_size: input side S of the [B, S, S, 3] batch.
      batch_size: B.
      runs: timed steps.
      warmup: untimed steps first (the first one traces).
      compute_dtype: "float32" or "bfloat16" (mixed_bfloat16 policy).
      seed: weights and batch seed.
    """
    keras.utils.set_random_seed(seed)
    with dtype_policy(compute_dtype):
        model = get_backbone(backbone, block3_strides=False)
    optimizer = _MomentumSGD(model.trainable_variables)
    images, _ = _batch(batch_size, image_size, 1, seed)

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            conv5 = model(x, training=True)["conv5"]
            loss = tf.reduce_mean(tf.cast(conv5, tf.float32))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)
        return loss

    return _time_step(step, (images,), runs, warmup)


def delg_step_seconds(
    model_kwargs: dict[str, Any],
    image_size: int = 512,
    batch_size: int = 8,
    runs: int = 3,
    warmup: int = 1,
    compute_dtype: str = "float32",
    seed: int = 0,
) -> list[float]:
    """Seconds per DELG forward + ArcFace + losses + backward + SGD step on a constant batch.

    Args:
      model_kwargs: `DelgModel` arguments (num_classes, backbone, ...).
      image_size, batch_size, runs, warmup, compute_dtype, seed: as `backbone_step_seconds`.
    """
    keras.utils.set_random_seed(seed)
    with dtype_policy(compute_dtype):
        model = DelgModel(**model_kwargs)
        model.build((None, image_size, image_size, 3))
    optimizer = _MomentumSGD(model.trainable_variables)
    images, labels = _batch(batch_size, image_size, model.num_classes, seed)

    @tf.function
    def step(x, y):
        losses, grads, *_ = forward_backward(model, x, y, batch_size)
        variables = model.trainable_variables
        pairs = [(g, v) for g, v in zip(grads, variables, strict=True) if g is not None]
        optimizer.apply([g for g, _ in pairs], [v for _, v in pairs])
        return losses["total"]

    return _time_step(step, (images, labels), runs, warmup)


def trainer_step_seconds(
    config: TrainConfig, runs: int = 3, steps_per_run: int = 2, warmup_steps: int = 1
) -> list[float]:
    """Seconds per step of the real training loop (`Trainer.run_chunk`), per timed run.

    Args:
      config: a fresh logdir (nothing to resume) and labelled TFRecords.
      runs: timed `run_chunk` calls.
      steps_per_run: steps per call (one compiled call runs them all).
      warmup_steps: steps of the untimed first call (it traces the loop).
    """
    trainer = Trainer(config)
    first = trainer.run_chunk(warmup_steps)
    if not first.healthy:
        raise RuntimeError(f"benchmark training step was not healthy: {first.last}")
    seconds = []
    for _ in range(runs):
        chunk = trainer.run_chunk(steps_per_run)
        seconds.append(chunk.seconds / chunk.steps)
    return seconds
