"""Training step timings: bare backbone, bare DELG step, and the whole training loop.

Three steps at the same image size, batch and optimizer (fused SGD momentum 0.9), so their
ratios isolate one cost each (plus `forward_step`, the model's inference-mode forward pass):

- `backbone_step`: the backbone alone (for ResNet50 the keras.applications network,
  include_top=False) with a trivial loss on conv5, backward, update.
- `bare_step`: a `Trainer`'s own model and optimizer running `train_step.forward_backward`
  (forward, ArcFace, the three DELG losses, backward) and the update on a constant in-memory
  batch. Its ratio to the first is what the DELG heads and losses add.
- `loop_steps`: `Trainer.run_chunk`, the real loop (TFRecord input pipeline, strategy.run,
  all-reduce, global-norm clipping, learning-rate schedule, health checks). Its ratio to the
  bare step of the same trainer is what the loop adds.

Each returns a callable that runs steps and returns how many; `interleaved_seconds` times them in
turn. Keras' `optimizer.apply` inside a `tf.function` keeps a model's variables alive after the
model is deleted, so the bare DELG step reuses the trainer's model and optimizer instead of
building a second copy (~1.3 GB each with an 81313-class ArcFace).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

import keras
import numpy as np
import tensorflow as tf

from delg_tf.models.backbones import get_backbone
from delg_tf.training.optimizer import sgd_momentum
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


def interleaved_seconds(
    steps: dict[str, Callable[[], int]], runs: int = 3, warmup: int = 1
) -> dict[str, list[float]]:
    """Seconds per step of each callable, timed in turn within every run.

    Each callable runs some steps and returns how many. Alternating them makes run i of every
    callable see the same machine state, so ratios of paired runs cancel most of the drift of a
    shared VM (a separate phase per callable does not: the ratio moved by +-6 points between runs).

    Args:
      steps: name -> callable; called `warmup` untimed times first (tracing, kernel selection).
      runs: timed calls of each.
      warmup: untimed calls of each first.
    """
    for step in steps.values():
        for _ in range(warmup):
            step()
    seconds = {name: [] for name in steps}
    for _ in range(runs):
        for name, step in steps.items():
            start = time.perf_counter()
            count = step()
            seconds[name].append((time.perf_counter() - start) / count)
    return seconds


def _batch(batch_size: int, image_size: int, num_classes: int, seed: int):
    rng = np.random.default_rng(seed)
    images = tf.constant(rng.uniform(-1, 1, [batch_size, image_size, image_size, 3]), tf.float32)
    labels = tf.constant(rng.integers(0, num_classes, batch_size), tf.int32)
    return images, labels


def backbone_step(
    backbone: str = "resnet50",
    image_size: int = 512,
    batch_size: int = 8,
    compute_dtype: str = "float32",
    seed: int = 0,
) -> Callable[[], int]:
    """One forward+backward+SGD step of the bare backbone (loss: mean of conv5) per call.

    Args:
      backbone: registry name; "resnet50" is keras.applications.ResNet50(include_top=False).
      image_size: input side S of the [B, S, S, 3] batch.
      batch_size: B.
      compute_dtype: "float32" or "bfloat16" (mixed_bfloat16 policy).
      seed: weights and batch seed.
    """
    keras.utils.set_random_seed(seed)
    with dtype_policy(compute_dtype):
        model = get_backbone(backbone, block3_strides=False)
    # The trainer's optimizer (fused SGD momentum), so only the model differs between the steps.
    optimizer = sgd_momentum(0.01, momentum=0.9)
    optimizer.build(model.trainable_variables)
    images, _ = _batch(batch_size, image_size, 1, seed)

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            conv5 = model(x, training=True)["conv5"]
            loss = tf.reduce_mean(tf.cast(conv5, tf.float32))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)
        return loss

    def run() -> int:
        step(images).numpy()
        return 1

    return run


def bare_step(trainer: Trainer, seed: int = 0) -> Callable[[], int]:
    """One bare DELG step of `trainer`'s model and optimizer on a constant batch per call.

    Forward, ArcFace logits, the DELG losses and gradients (`train_step.forward_backward`, as the
    loop runs them) and the optimizer update, in one `tf.function`: the loop minus the input
    pipeline, the replica machinery, clipping and the checks. It updates the trainer's weights
    (harmless for timing).
    """
    config = trainer.config
    model, optimizer = trainer.model, trainer.optimizer
    classes = config.model.num_classes
    images, labels = _batch(trainer.per_replica_batch, config.image_size, classes, seed)

    @tf.function
    def step(x, y):
        losses, grads, *_ = forward_backward(
            model, x, y, config.batch_size,
            attention_loss_weight=config.attention_loss_weight,
            reconstruction_loss_weight=config.reconstruction_loss_weight,
        )  # fmt: skip
        pairs = [
            (g, v) for g, v in zip(grads, model.trainable_variables, strict=True) if g is not None
        ]
        optimizer.apply([g for g, _ in pairs], [v for _, v in pairs])
        return losses["total"]

    def run() -> int:
        step(images, labels).numpy()
        return 1

    return run


def forward_step(trainer: Trainer, seed: int = 0) -> Callable[[], int]:
    """One inference-mode forward pass of `trainer`'s model (every output) on a constant batch."""
    config, model = trainer.config, trainer.model
    images, _ = _batch(trainer.per_replica_batch, config.image_size, config.model.num_classes, seed)

    @tf.function
    def step(x):
        outputs = model(x, training=False)
        return tf.add_n([tf.reduce_sum(tf.cast(v, tf.float32)) for v in outputs.values()])

    def run() -> int:
        step(images).numpy()
        return 1

    return run


def loop_steps(trainer: Trainer, steps_per_run: int = 2) -> Callable[[], int]:
    """`steps_per_run` steps of the real training loop (`Trainer.run_chunk`) per call.

    Args:
      trainer: built on a fresh logdir (nothing to resume) and labelled TFRecords.
      steps_per_run: steps per call (one compiled call runs them all; the first call traces).
    """

    def run() -> int:
        chunk = trainer.run_chunk(steps_per_run)
        if not chunk.healthy:
            raise RuntimeError(f"benchmark training step was not healthy: {chunk.last}")
        return chunk.steps

    return run
