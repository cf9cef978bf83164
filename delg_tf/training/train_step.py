"""The DELG training step, and the compiled loop that runs several of them per call.

Per step (on each replica): forward pass, the three DELG losses (each divided by the global
batch, so the sum over replicas is replica-invariant), one backward pass, an all-reduce of the
gradients, clipping of the *global* gradient by its global norm (10), and an SGD-momentum update
with the learning rate decaying linearly to 0 (the clip factor is folded into that step's learning
rate, see optimizer.py). `steps_per_loop` steps run inside one
`tf.function` call (a `tf.range` loop around `strategy.run`), which keeps the Python overhead off
the step on accelerators.

Guards: a label outside [0, num_classes) or a NaN/Inf loss term or gradient norm ends the loop
after that step, and `raise_if_unhealthy` turns it into an error naming the step. The official
code clipped labels to [0, num_classes] (itself out of range) and had no NaN guard.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from delg_tf.models import DelgModel
from delg_tf.training.accuracy import count_correct, labels_in_range
from delg_tf.training.config import TrainConfig
from delg_tf.training.errors import LabelRangeError, NonFiniteLossError
from delg_tf.training.losses import delg_losses
from delg_tf.training.training_state import TrainingState

# The per-step scalars, reduced over replicas with one SUM. Loss terms are already divided by
# the global batch; counts are counts; grad_norm and learning_rate are the same on every
# replica and are divided by the replica count before the sum.
SCALARS = (
    "total",
    "global_ce",
    "attention_ce",
    "reconstruction_mse",
    "global_correct",
    "attention_correct",
    "bad_labels",
    "grad_norm",
    "learning_rate",
)
_BAD_LABELS = SCALARS.index("bad_labels")
# Terms whose non-finite value stops training, in the order they are reported.
CHECKED_TERMS = ("global_ce", "attention_ce", "reconstruction_mse", "total", "grad_norm")


@dataclasses.dataclass
class ChunkResult:
    """What one call of the compiled loop returns (host values).

    Attributes:
      steps: steps run (fewer than asked if a bad step stopped the loop).
      sums: per-scalar sums over the steps, keyed by `SCALARS`.
      last: the scalars of the last step run.
      healthy: False if the last step had a non-finite term or a bad label.
      stop: a stop was requested on some worker.
      attention: `[b, h, w, 1]` attention of replica 0's part of the last batch.
      images: `[k, S, S, 3]` the first k normalized images of that batch.
      seconds: wall time of the call.
    """

    steps: int
    sums: dict[str, float]
    last: dict[str, float]
    healthy: bool
    stop: bool
    attention: np.ndarray
    images: np.ndarray
    seconds: float


def forward_backward(
    model: DelgModel,
    images: tf.Tensor,
    labels: tf.Tensor,
    global_batch_size: int,
    attention_loss_weight: float = 1.0,
    reconstruction_loss_weight: float = 10.0,
):
    """Forward pass, DELG losses and gradients on one replica's `[b, S, S, 3]` images.

    Returns:
      `(losses dict, gradients list aligned with model.trainable_variables (None where a
      variable gets no gradient), ArcFace logits [b, N], attention logits [b, N],
      attention [b, h, w, 1])`.
    """
    with tf.GradientTape() as tape:
        outputs = model(images, training=True)
        logits = model.global_logits(outputs["global_descriptor"], labels=labels, training=True)
        losses = delg_losses(
            outputs,
            logits,
            labels,
            global_batch_size,
            attention_loss_weight=attention_loss_weight,
            reconstruction_loss_weight=reconstruction_loss_weight,
        )
    grads = tape.gradient(losses["total"], model.trainable_variables)
    return losses, grads, logits, outputs["attention_logits"], outputs["attention"]


def clip_factor(grad_norm: tf.Tensor, clip_norm: float) -> tf.Tensor:
    """The factor `tf.clip_by_global_norm` multiplies every gradient by: min(1, clip / norm).

    The optimizer folds it into the learning rate instead of rescaling ~250M gradient values.
    A NaN/Inf norm gives NaN, as in `tf.clip_by_global_norm`; the health check stops the run.
    """
    clip_norm = tf.constant(clip_norm, grad_norm.dtype)
    factor = clip_norm / tf.maximum(grad_norm, clip_norm)
    return tf.where(
        tf.math.is_finite(grad_norm), factor, tf.constant(float("nan"), grad_norm.dtype)
    )


class TrainSteps:
    """Runs training steps on `state`, up to `num_steps` per compiled call.

    Args:
      config: the run's settings.
      strategy: the strategy `state` was built in.
      state: model, optimizer and global step.
      next_batch: `iterator -> (images, labels)` per-replica values.
    """

    def __init__(
        self,
        config: TrainConfig,
        strategy: tf.distribute.Strategy,
        state: TrainingState,
        next_batch: Callable,
    ):
        self._config = config
        self._strategy = strategy
        self._state = state
        self._next_batch = next_batch
        per_replica_batch = config.batch_size // strategy.num_replicas_in_sync
        local = state.model.backbone.compute_output_shape(
            (per_replica_batch, config.image_size, config.image_size, 3)
        )["local"]
        self._attention_shape = (per_replica_batch, local[1], local[2], 1)
        k = min(config.summary_images, per_replica_batch)
        self._image_sample_shape = (k, config.image_size, config.image_size, 3)

        def forward_backward_fn(images, labels):
            return forward_backward(
                state.model,
                images,
                labels,
                config.batch_size,
                attention_loss_weight=config.attention_loss_weight,
                reconstruction_loss_weight=config.reconstruction_loss_weight,
            )

        self._forward_backward = (
            tf.function(forward_backward_fn, jit_compile=True)
            if config.jit_compile
            else forward_backward_fn
        )
        self._loop = tf.function(self._loop_fn)

    def __call__(self, iterator, num_steps: int, stop_requested: bool = False) -> ChunkResult:
        """Runs `num_steps` steps from `iterator` in one compiled call; returns host values."""
        start = time.perf_counter()
        out = self._loop(iterator, tf.constant(num_steps, tf.int32), tf.constant(stop_requested))
        out = {k: v.numpy() for k, v in out.items()}
        seconds = time.perf_counter() - start
        return ChunkResult(
            steps=int(out["done"]),
            sums=dict(zip(SCALARS, out["sums"].tolist(), strict=True)),
            last=dict(zip(SCALARS, out["last"].tolist(), strict=True)),
            healthy=bool(out["healthy"]),
            stop=bool(out["stop"]),
            attention=out["attention"],
            images=out["images"],
            seconds=seconds,
        )

    def _replica_step(self, images, labels):
        """One training step on one replica's share of the batch."""
        config, model, optimizer = self._config, self._state.model, self._state.optimizer
        replicas = tf.distribute.get_replica_context().num_replicas_in_sync
        labels = tf.cast(labels, tf.int32)
        in_range = labels_in_range(labels, config.model.num_classes)
        bad_labels = tf.reduce_sum(tf.cast(tf.logical_not(in_range), tf.float32))
        # Clipped only so the step can finish and report; any bad label stops the run unsaved.
        labels = tf.clip_by_value(labels, 0, config.model.num_classes - 1)
        variables = model.trainable_variables
        losses, grads, logits, attention_logits, attention = self._forward_backward(images, labels)
        pairs = [(g, v) for g, v in zip(grads, variables, strict=True) if g is not None]
        summed = tf.distribute.get_replica_context().all_reduce(
            tf.distribute.ReduceOp.SUM, [g for g, _ in pairs]
        )
        grad_norm = tf.linalg.global_norm(summed)
        learning_rate = tf.cast(optimizer.learning_rate, tf.float32)
        optimizer.apply_scaled(
            summed, [v for _, v in pairs], clip_factor(grad_norm, config.clip_norm)
        )

        per_scalar = {
            **losses,
            "global_correct": count_correct(logits, labels),
            "attention_correct": count_correct(attention_logits, labels),
            "bad_labels": bad_labels,
            "grad_norm": grad_norm / tf.cast(replicas, tf.float32),
            "learning_rate": learning_rate / tf.cast(replicas, tf.float32),
        }
        scalars = tf.stack([tf.cast(per_scalar[name], tf.float32) for name in SCALARS])
        k = self._image_sample_shape[0]
        return scalars, attention, tf.cast(images[:k], tf.float32)

    def _loop_fn(self, iterator, num_steps, stop_flag):
        """Runs up to `num_steps` steps; stops early after a bad step. Compiled once."""
        strategy = self._strategy
        sums = tf.zeros([len(SCALARS)])
        last = tf.zeros([len(SCALARS)])
        done = tf.constant(0)
        healthy = tf.constant(True)
        attention = tf.zeros(self._attention_shape)
        images = tf.zeros(self._image_sample_shape)
        for _ in tf.range(num_steps):
            # Multi-worker input has an unknown batch dimension (it allows partial batches).
            tf.autograph.experimental.set_loop_options(
                shape_invariants=[
                    (attention, tf.TensorShape([None, *self._attention_shape[1:]])),
                    (images, tf.TensorShape([None, *self._image_sample_shape[1:]])),
                ]
            )
            scalars, replica_attention, replica_images = strategy.run(
                self._replica_step, args=self._next_batch(iterator)
            )
            last = strategy.reduce(tf.distribute.ReduceOp.SUM, scalars, axis=None)
            self._state.step.assign_add(1)
            done += 1
            sums += last
            attention = strategy.experimental_local_results(replica_attention)[0]
            images = strategy.experimental_local_results(replica_images)[0]
            healthy = tf.logical_and(tf.reduce_all(tf.math.is_finite(last)), last[_BAD_LABELS] == 0)
            if not healthy:
                break

        # Every worker must stop at the same step, so a stop on any worker stops all.
        def any_stop():
            flag = tf.cast(stop_flag, tf.int32)
            return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, flag)

        stop = strategy.experimental_local_results(strategy.run(any_stop))[0] > 0
        return dict(
            sums=sums,
            last=last,
            done=done,
            healthy=healthy,
            stop=stop,
            attention=attention,
            images=images,
        )


def raise_if_unhealthy(
    chunk: ChunkResult, step: int, num_classes: int, last_checkpoint: str | None
) -> None:
    """Raises the error for a chunk whose last step was bad; returns for a healthy one.

    Args:
      chunk: the loop call's result.
      step: the global step after it (the bad step's number).
      num_classes: `--num_classes`, for the message.
      last_checkpoint: the last good checkpoint, for the message.

    Raises:
      LabelRangeError: a label was outside [0, num_classes).
      NonFiniteLossError: a loss term or the gradient norm was NaN/Inf.
    """
    if chunk.healthy:
        return
    last = chunk.last
    if last["bad_labels"] > 0:
        raise LabelRangeError(
            f"Step {step}: {int(last['bad_labels'])} training labels outside [0, "
            f"--num_classes={num_classes}). Check --num_classes against the "
            f"dataset's relabeling.csv. Not saved; the last good checkpoint is "
            f"{last_checkpoint}."
        )
    bad = [name for name in CHECKED_TERMS if not math.isfinite(last[name])]
    values = ", ".join(f"{name}={last[name]:.6g}" for name in CHECKED_TERMS)
    raise NonFiniteLossError(
        f"Non-finite {', '.join(bad)} at step {step} ({values}). Not saved; the last good "
        f"checkpoint is {last_checkpoint}. Lower --initial_lr or check the input."
    )
