"""The DELG custom training loop: one code path for every tf.distribute strategy.

Per step (on each replica): forward pass, the three DELG losses (each divided by the global
batch, so the sum over replicas is replica-invariant), one backward pass, an all-reduce of the
gradients, clipping of the *global* gradient by its global norm (10), and an SGD-momentum update
with the learning rate decaying linearly to 0. `steps_per_loop` steps run inside one
`tf.function` call (a `tf.range` loop around `strategy.run`), which is what keeps the Python
overhead off the step on accelerators.

Deviations from the official `train.py` (delg_reference.md §2.3), each deliberate:
- Gradients are clipped after the all-reduce (the official code clips each replica's partial
  gradient), so the update does not depend on the replica count.
- The ImageNet backbone weights are loaded when the model is built, before step 0; the official
  code ran one training step first and then overwrote the backbone, so its heads and momentum
  kept an update computed with random backbone weights.
- Labels outside [0, num_classes) stop the run naming the step (the official code clipped them
  to [0, num_classes], itself out of range).
- A NaN/Inf loss or gradient norm stops the run naming the step and the loss term, without
  saving: the last checkpoint on disk is the last good state.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
import time

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from delg_tf.data import preprocessing, reader
from delg_tf.models import DelgModel
from delg_tf.training import checkpointing, preflight, summaries
from delg_tf.training.config import TrainConfig, write_text_atomically
from delg_tf.training.learning_rate import LinearDecayToZero
from delg_tf.training.losses import delg_losses
from delg_tf.training.preemption import StopRequest
from delg_tf.training.strategy import build_strategy, is_chief, worker_write_dir

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
_INDEX = {name: i for i, name in enumerate(SCALARS)}
# Terms whose non-finite value stops training, in the order they are reported.
CHECKED_TERMS = ("global_ce", "attention_ce", "reconstruction_mse", "total", "grad_norm")
# Fields that define the model; a resumed run must not change them.
MODEL_FIELDS = (
    "backbone",
    "num_classes",
    "block3_strides",
    "delg_embedding_layer_dim",
    "use_autoencoder",
    "autoencoder_dimensions",
)


class TrainingError(RuntimeError):
    """Training stopped on bad state; nothing bad was saved."""


class NonFiniteLossError(TrainingError):
    """A loss term or the gradient norm became NaN or Inf."""


class LabelRangeError(TrainingError):
    """A training label lies outside [0, num_classes)."""


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


@dataclasses.dataclass
class TrainResult:
    """How a run ended.

    Attributes:
      step: the global step reached (optimizer updates applied).
      stopped_by: "max_iters", or the signal name ("SIGTERM", "SIGINT") of a clean stop.
      metrics: the last report's metrics.
      checkpoint: the last checkpoint prefix written by the chief (None on other workers).
      validation: the last validation metrics, if any.
      weights_digest: sha256 of the trainable weights, to compare replicas and workers.
    """

    step: int
    stopped_by: str
    metrics: dict[str, float]
    checkpoint: str | None
    validation: dict[str, float] | None
    weights_digest: str


def model_kwargs(config: TrainConfig, backbone_weights: str | None, synchronized_bn: bool):
    """`DelgModel` arguments for a training config (official flag names -> model names)."""
    return dict(
        num_classes=config.num_classes,
        backbone=config.backbone,
        backbone_weights=backbone_weights,
        block3_strides=config.block3_strides,
        gem_power=config.delg_gem_power,
        embedding_dim=config.delg_embedding_layer_dim,
        arcface_scale=config.delg_scale_factor_init,
        arcface_margin=config.delg_arcface_margin,
        use_autoencoder=config.use_autoencoder,
        autoencoder_dim=config.autoencoder_dimensions,
        synchronized_bn=synchronized_bn,
    )


class _SummedGradientsSGD(keras.optimizers.SGD):
    """Keras SGD that applies gradients the training step has already all-reduced.

    Keras sums the gradients over replicas inside `apply`, after its own clipping, so the clip
    would act on each replica's partial gradient. The step all-reduces and clips the global
    gradient itself; this class only stops Keras from summing a second time. The mirrored
    equivalence test fails if a Keras release changes this hook.
    """

    def _all_reduce_sum_gradients(self, grads_and_vars):
        return list(grads_and_vars)


def build_optimizer(config: TrainConfig) -> keras.optimizers.Optimizer:
    """SGD with momentum 0.9 on the linear-decay schedule (build it inside `strategy.scope()`)."""
    if not hasattr(keras.optimizers.SGD, "_all_reduce_sum_gradients"):
        raise RuntimeError(
            "This Keras release has no Optimizer._all_reduce_sum_gradients; the training step "
            "would sum gradients over replicas twice."
        )
    return _SummedGradientsSGD(
        learning_rate=LinearDecayToZero(config.initial_lr, config.max_iters),
        momentum=config.momentum,
        name="sgd",
    )


def weights_digest(variables) -> str:
    """sha256 over the values of `variables` in order (identical weights -> identical digest)."""
    digest = hashlib.sha256()
    for variable in variables:
        digest.update(np.ascontiguousarray(variable.numpy()).tobytes())
    return digest.hexdigest()


def _check_resumed_config(config: TrainConfig, logdir: str) -> None:
    """Refuses to resume a logdir whose model differs (the restore error would be cryptic)."""
    path = os.path.join(logdir, checkpointing.TRAIN_CONFIG_FILE)
    if not tf.io.gfile.exists(path):
        return
    with tf.io.gfile.GFile(path) as f:
        previous = json.load(f)
    for field in MODEL_FIELDS:
        if field in previous and previous[field] != getattr(config, field):
            raise preflight.FlagError(
                f"--{field}={getattr(config, field)} but the run in {logdir} was trained with "
                f"{previous[field]}; use a new --logdir."
            )


class Trainer:
    """Builds the model, optimizer, input and checkpoints for a config, and trains.

    Args:
      config: the resolved settings.
      strategy: a strategy to use instead of building `config.strategy` (tests pass their own
        device lists).
      flags_text: written to `<logdir>/flags.txt` by the chief, if given.

    Raises:
      FlagError: on a bad setting, before anything is traced.
    """

    def __init__(
        self,
        config: TrainConfig,
        strategy: tf.distribute.Strategy | None = None,
        flags_text: str | None = None,
    ):
        self.config = config
        self.train_files = preflight.match_files("train_file_pattern", config.train_file_pattern)
        if config.validation_file_pattern:
            preflight.match_files("validation_file_pattern", config.validation_file_pattern)
        if config.op_determinism:
            tf.config.experimental.enable_op_determinism()
        # Before any TF op: multi-worker collectives must be configured at program start.
        self.strategy = strategy or build_strategy(config.strategy, config.tpu)
        preflight.check_labels(self.train_files, config.num_classes)
        self.chief = is_chief(self.strategy)
        replicas = self.strategy.num_replicas_in_sync
        if config.batch_size % replicas:
            raise preflight.FlagError(
                f"--batch_size={config.batch_size} is not divisible by the {replicas} replicas."
            )
        self.per_replica_batch = config.batch_size // replicas
        self.checkpoint_dir = checkpointing.checkpoint_dir(config.logdir)
        resuming = tf.train.get_checkpoint_state(self.checkpoint_dir) is not None
        if resuming:
            _check_resumed_config(config, config.logdir)

        keras.utils.set_random_seed(config.seed)
        self._build_model(resuming)
        preflight.check_image_size(config.image_size, config.backbone, self.model.min_input_size)
        if self.chief:
            tf.io.gfile.makedirs(config.logdir)
            write_text_atomically(
                os.path.join(config.logdir, checkpointing.TRAIN_CONFIG_FILE), config.to_json()
            )
            checkpointing.write_model_config(self.model.get_config(), config.logdir)
            if flags_text is not None:
                write_text_atomically(
                    os.path.join(config.logdir, checkpointing.FLAGS_FILE), flags_text
                )

        # tf.distribute's iterators cannot be checkpointed. Where one process feeds every
        # replica, the step pulls one per-replica batch per replica from a plain (checkpointable)
        # tf.data iterator and places them itself. Multi-worker iterator state is per worker and
        # the chief's checkpoint holds only its own, so there (and on TPU) the input restarts
        # with a fresh seed instead.
        self.checkpoints_iterator = config.checkpoint_iterator and not isinstance(
            self.strategy,
            (tf.distribute.MultiWorkerMirroredStrategy, tf.distribute.TPUStrategy),
        )
        objects = {"model": self.model, "optimizer": self.optimizer, "step": self.step}
        if self.checkpoints_iterator:
            self.train_iterator = iter(self._local_train_dataset(config.seed))
            objects["iterator"] = self.train_iterator
        restored = checkpointing.restore_latest(
            objects, self.checkpoint_dir, optional=("iterator",)
        )
        if restored:
            logging.info("Resumed from %s at step %d.", restored, self.current_step)
        elif config.imagenet_checkpoint:
            logging.info("Backbone initialised from %s at step 0.", config.imagenet_checkpoint)
        if not self.checkpoints_iterator:
            # A fresh order after a restart, reproducible from (seed, step).
            self.train_iterator = iter(self._train_dataset(config.seed + self.current_step))
        self.checkpoint = tf.train.Checkpoint(**objects)
        self.last_checkpoint = restored
        write_dir = worker_write_dir(self.checkpoint_dir, self.strategy)
        self.manager = tf.train.CheckpointManager(
            self.checkpoint,
            write_dir,
            max_to_keep=config.max_to_keep,
            keep_checkpoint_every_n_hours=config.keep_checkpoint_every_n_hours,
        )
        self.validation_dataset = (
            self._validation_dataset() if config.validation_file_pattern else None
        )
        if config.jit_compile:
            self._forward_backward = tf.function(self._forward_backward_fn, jit_compile=True)
        else:
            self._forward_backward = self._forward_backward_fn
        self._train_loop = tf.function(self._loop)
        self._eval_step = tf.function(self._eval_replicas, reduce_retracing=True)

    # ----------------------------------------------------------------------------- building
    def _build_model(self, resuming: bool) -> None:
        config = self.config
        previous_policy = keras.mixed_precision.global_policy()
        if config.mixed_precision:
            keras.mixed_precision.set_global_policy("mixed_bfloat16")
        try:
            with self.strategy.scope():
                self.model = DelgModel(
                    **model_kwargs(
                        config,
                        # On resume the checkpoint holds the backbone; do not read the file.
                        backbone_weights=None if resuming else config.imagenet_checkpoint,
                        synchronized_bn=config.sync_batch_norm
                        and self.strategy.num_replicas_in_sync > 1,
                    )
                )
                self.model.build((None, config.image_size, config.image_size, 3))
                self.optimizer = build_optimizer(config)
                # Built inside the scope: slot variables created lazily in the first step fail
                # under MirroredStrategy (environment.md §4, pitfall 1).
                self.optimizer.build(self.model.trainable_variables)
                self.step = tf.Variable(
                    0,
                    dtype=tf.int64,
                    trainable=False,
                    name="step",
                    aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
                )
        finally:
            keras.mixed_precision.set_global_policy(previous_policy)
        local = self.model.backbone.compute_output_shape(
            (self.per_replica_batch, config.image_size, config.image_size, 3)
        )["local"]
        self.attention_shape = (self.per_replica_batch, local[1], local[2], 1)
        k = min(config.summary_images, self.per_replica_batch)
        self.image_sample_shape = (k, config.image_size, config.image_size, 3)

    def _train_dataset(self, seed: int):
        """The training input distributed by the strategy (per-replica batches)."""
        return self.strategy.distribute_datasets_from_function(self._dataset_fn(seed))

    def _local_train_dataset(self, seed: int) -> tf.data.Dataset:
        """The same per-replica batches from one plain tf.data pipeline, for `_next_inputs`."""
        replicas = self.strategy.num_replicas_in_sync
        context = tf.distribute.InputContext(
            num_input_pipelines=1, input_pipeline_id=0, num_replicas_in_sync=replicas
        )
        return self._dataset_fn(seed)(context)

    def _dataset_fn(self, seed: int):
        config = self.config

        def dataset_fn(input_context):
            return reader.build_dataset(
                self.train_files,
                global_batch_size=config.batch_size,
                is_training=True,
                image_size=config.image_size,
                normalization=self.model.input_normalization,
                input_context=input_context,
                seed=seed,
                augmentation=config.use_augmentation,
                random_flip=config.random_flip,
                deterministic=config.deterministic_input,
            )

        return dataset_fn

    def _validation_dataset(self):
        config = self.config

        def dataset_fn(input_context):
            batches = math.ceil(config.resolved_eval_batches / input_context.num_input_pipelines)
            return reader.build_dataset(
                config.validation_file_pattern,
                global_batch_size=config.batch_size,
                is_training=False,
                image_size=config.image_size,
                normalization=self.model.input_normalization,
                input_context=input_context,
                repeat=False,
                deterministic=True,
            ).take(batches)

        return self.strategy.distribute_datasets_from_function(dataset_fn)

    @property
    def current_step(self) -> int:
        return int(self.step.numpy())

    # -------------------------------------------------------------------------- the step
    def _next_inputs(self, iterator):
        """The next `(images, labels)` per-replica values from either kind of iterator."""
        if not self.checkpoints_iterator:
            return next(iterator)
        # One per-replica batch per replica, in replica order: the same examples, split the same
        # way, as distribute_datasets_from_function gives.
        batches = [next(iterator) for _ in range(self.strategy.num_replicas_in_sync)]
        return tuple(
            self.strategy.experimental_distribute_values_from_function(
                lambda context, i=i: batches[context.replica_id_in_sync_group][i]
            )
            for i in range(2)
        )

    def _replica_step(self, images, labels):
        """One training step on one replica's share of the batch."""
        config = self.config
        replicas = tf.distribute.get_replica_context().num_replicas_in_sync
        labels = tf.cast(labels, tf.int32)
        in_range = tf.logical_and(labels >= 0, labels < config.num_classes)
        bad_labels = tf.reduce_sum(tf.cast(tf.logical_not(in_range), tf.float32))
        # Clipped only so the step can finish and report; any bad label stops the run unsaved.
        labels = tf.clip_by_value(labels, 0, config.num_classes - 1)
        variables = self.model.trainable_variables
        losses, grads, logits, attention_logits, attention = self._forward_backward(images, labels)
        pairs = [(g, v) for g, v in zip(grads, variables, strict=True) if g is not None]
        summed = tf.distribute.get_replica_context().all_reduce(
            tf.distribute.ReduceOp.SUM, [g for g, _ in pairs]
        )
        clipped, grad_norm = tf.clip_by_global_norm(summed, config.clip_norm)
        learning_rate = tf.cast(self.optimizer.learning_rate, tf.float32)
        self.optimizer.apply(clipped, [v for _, v in pairs])

        def correct(class_logits):
            predictions = tf.argmax(class_logits, axis=-1, output_type=tf.int32)
            return tf.reduce_sum(tf.cast(tf.equal(predictions, labels), tf.float32))

        per_scalar = {
            **losses,
            "global_correct": correct(logits),
            "attention_correct": correct(attention_logits),
            "bad_labels": bad_labels,
            "grad_norm": grad_norm / tf.cast(replicas, tf.float32),
            "learning_rate": learning_rate / tf.cast(replicas, tf.float32),
        }
        scalars = tf.stack([tf.cast(per_scalar[name], tf.float32) for name in SCALARS])
        k = self.image_sample_shape[0]
        return scalars, attention, tf.cast(images[:k], tf.float32)

    def _forward_backward_fn(self, images, labels):
        """Forward pass, losses and gradients on one replica (XLA-compiled with --jit_compile).

        Returns:
          `(losses dict, gradients list aligned with trainable_variables, ArcFace logits [b, N],
          attention logits [b, N], attention [b, h, w, 1])`.
        """
        config = self.config
        with tf.GradientTape() as tape:
            outputs = self.model(images, training=True)
            logits = self.model.global_logits(
                outputs["global_descriptor"], labels=labels, training=True
            )
            losses = delg_losses(
                outputs,
                logits,
                labels,
                config.batch_size,
                attention_loss_weight=config.attention_loss_weight,
                reconstruction_loss_weight=config.reconstruction_loss_weight,
            )
        grads = tape.gradient(losses["total"], self.model.trainable_variables)
        return losses, grads, logits, outputs["attention_logits"], outputs["attention"]

    def _loop(self, iterator, num_steps, stop_flag):
        """Runs up to `num_steps` steps; stops early after a bad step. Compiled once."""
        strategy = self.strategy
        sums = tf.zeros([len(SCALARS)])
        last = tf.zeros([len(SCALARS)])
        done = tf.constant(0)
        healthy = tf.constant(True)
        attention = tf.zeros(self.attention_shape)
        images = tf.zeros(self.image_sample_shape)
        for _ in tf.range(num_steps):
            # Multi-worker input has an unknown batch dimension (it allows partial batches).
            tf.autograph.experimental.set_loop_options(
                shape_invariants=[
                    (attention, tf.TensorShape([None, *self.attention_shape[1:]])),
                    (images, tf.TensorShape([None, *self.image_sample_shape[1:]])),
                ]
            )
            scalars, replica_attention, replica_images = strategy.run(
                self._replica_step, args=self._next_inputs(iterator)
            )
            last = strategy.reduce(tf.distribute.ReduceOp.SUM, scalars, axis=None)
            self.step.assign_add(1)
            done += 1
            sums += last
            attention = strategy.experimental_local_results(replica_attention)[0]
            images = strategy.experimental_local_results(replica_images)[0]
            healthy = tf.logical_and(
                tf.reduce_all(tf.math.is_finite(last)), last[_INDEX["bad_labels"]] == 0
            )
            if not healthy:
                break

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

    def run_chunk(self, num_steps: int, stop_requested: bool = False) -> ChunkResult:
        """Runs `num_steps` training steps in one compiled call and returns host values."""
        start = time.perf_counter()
        out = self._train_loop(
            self.train_iterator,
            tf.constant(num_steps, tf.int32),
            tf.constant(stop_requested),
        )
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

    # ------------------------------------------------------------------------ validation
    def _eval_replicas(self, images, labels):
        def fn(images, labels):
            outputs = self.model(images, training=False)
            logits = self.model.global_logits(outputs["global_descriptor"], training=False)
            labels = tf.cast(labels, tf.int32)
            valid = tf.logical_and(labels >= 0, labels < self.config.num_classes)

            def correct(class_logits):
                hit = tf.equal(tf.argmax(class_logits, axis=-1, output_type=tf.int32), labels)
                return tf.reduce_sum(tf.cast(tf.logical_and(hit, valid), tf.float32))

            count = tf.reduce_sum(tf.cast(valid, tf.float32))
            return tf.stack([correct(logits), correct(outputs["attention_logits"]), count])

        per_replica = self.strategy.run(fn, args=(images, labels))
        return self.strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    def evaluate(self) -> dict[str, float]:
        """Global and attention accuracy on the validation batches (no ArcFace margin)."""
        totals = np.zeros(3)
        for images, labels in self.validation_dataset:
            totals += self._eval_step(images, labels).numpy()
        count = max(totals[2], 1.0)
        return {
            "global_accuracy": totals[0] / count,
            "attention_accuracy": totals[1] / count,
            "examples": totals[2],
        }

    # ------------------------------------------------------------------------- saving
    def save(self) -> str | None:
        """Saves a checkpoint at the current step, after checking every value is finite.

        Every worker must call this (saving distributed variables can be collective); only the
        chief's files stay, other workers' go to a temporary directory that is deleted.

        Raises:
          NonFiniteLossError: if a weight or optimizer slot is NaN/Inf (nothing is written).
        """
        step = self.current_step
        if not checkpointing.all_finite(self.model.weights + list(self.optimizer.variables)):
            raise NonFiniteLossError(
                f"Weights or optimizer slots are NaN/Inf at step {step}; not saved. The last "
                f"good checkpoint is {self.last_checkpoint}."
            )
        path = self.manager.save(checkpoint_number=step)
        if self.chief:
            self.last_checkpoint = path
            return path
        shutil.rmtree(self.manager.directory, ignore_errors=True)
        return None

    # --------------------------------------------------------------------------- the run
    def _check_chunk(self, chunk: ChunkResult) -> None:
        if chunk.healthy:
            return
        step = self.current_step
        last = chunk.last
        if last["bad_labels"] > 0:
            raise LabelRangeError(
                f"Step {step}: {int(last['bad_labels'])} training labels outside [0, "
                f"--num_classes={self.config.num_classes}). Check --num_classes against the "
                f"dataset's relabeling.csv. Not saved; the last good checkpoint is "
                f"{self.last_checkpoint}."
            )
        bad = [name for name in CHECKED_TERMS if not math.isfinite(last[name])]
        values = ", ".join(f"{name}={last[name]:.6g}" for name in CHECKED_TERMS)
        raise NonFiniteLossError(
            f"Non-finite {', '.join(bad)} at step {step} ({values}). Not saved; the last good "
            f"checkpoint is {self.last_checkpoint}. Lower --initial_lr or check the input."
        )

    def _chunk_size(self, step: int) -> int:
        config = self.config
        size = min(config.steps_per_loop, config.max_iters - step)
        for interval in (config.report_interval, config.save_interval, config.eval_interval):
            size = min(size, interval - step % interval)
        return size

    def _metrics(self, sums: dict[str, float], steps: int, last: dict[str, float]) -> dict:
        batch = self.config.batch_size
        metrics = {
            name: sums[name] / steps
            for name in ("total", "global_ce", "attention_ce", "reconstruction_mse", "grad_norm")
        }
        metrics["global_accuracy"] = sums["global_correct"] / (steps * batch)
        metrics["attention_accuracy"] = sums["attention_correct"] / (steps * batch)
        metrics["learning_rate"] = last["learning_rate"]
        return metrics

    def run(self, stop: StopRequest | None = None) -> TrainResult:
        """Trains to `max_iters` or until a stop is requested; saves on the way out.

        Returns:
          A `TrainResult`.

        Raises:
          NonFiniteLossError, LabelRangeError: a bad step; nothing from it was saved.
        """
        config = self.config
        stop = stop or StopRequest()
        log = summaries.RunLog(config.logdir, self.chief)
        step = self.current_step
        window = {name: 0.0 for name in SCALARS}
        window_steps = 0
        timed_steps, timed_seconds = 0, 0.0
        eta_rate = None
        metrics: dict[str, float] = {}
        validation = None
        stopped_by = "max_iters"
        saved_step = step if self.last_checkpoint else None
        first_chunk = True
        try:
            while step < config.max_iters:
                chunk = self.run_chunk(self._chunk_size(step), stop.requested)
                self._check_chunk(chunk)
                step = self.current_step
                for name in SCALARS:
                    window[name] += chunk.sums[name]
                window_steps += chunk.steps
                if not first_chunk:  # the first call includes tracing
                    timed_steps += chunk.steps
                    timed_seconds += chunk.seconds
                first_chunk = False
                finished = step >= config.max_iters
                if chunk.stop or finished or step % config.report_interval == 0:
                    metrics = self._metrics(window, window_steps, chunk.last)
                    steps_per_second = timed_steps / timed_seconds if timed_seconds else math.nan
                    if timed_seconds:
                        eta_rate = steps_per_second
                    metrics["steps_per_second"] = steps_per_second
                    metrics["images_per_second"] = steps_per_second * config.batch_size
                    eta = (config.max_iters - step) / eta_rate if eta_rate else math.nan
                    logging.info(
                        summaries.report_line(
                            step,
                            config.max_iters,
                            metrics,
                            metrics["images_per_second"],
                            eta,
                        )
                    )
                    log.scalars(step, metrics)
                    images = preprocessing.denormalize_image(
                        chunk.images, self.model.input_normalization
                    ).numpy()
                    log.attention(step, chunk.attention, images)
                    log.record({"step": step, **metrics})
                    window = {name: 0.0 for name in SCALARS}
                    window_steps, timed_steps, timed_seconds = 0, 0, 0.0
                if self.validation_dataset is not None and (
                    step % config.eval_interval == 0 or finished
                ):
                    validation = self.evaluate()
                    logging.info(
                        "step %d validation: global accuracy %.4f, attention accuracy %.4f "
                        "(%d examples)",
                        step,
                        validation["global_accuracy"],
                        validation["attention_accuracy"],
                        validation["examples"],
                    )
                    log.scalars(step, validation, prefix="validation")
                    log.record({"step": step, "validation": validation})
                if chunk.stop or finished or step % config.save_interval == 0:
                    self.save()
                    saved_step = step
                log.flush()
                if chunk.stop:
                    stopped_by = stop.signal_name or "stop request"
                    logging.warning("Stopped by %s at step %d; checkpoint saved.", stopped_by, step)
                    break
            if saved_step != step:
                self.save()
        finally:
            log.close()
        return TrainResult(
            step=step,
            stopped_by=stopped_by,
            metrics=metrics,
            checkpoint=self.last_checkpoint,
            validation=validation,
            weights_digest=weights_digest(self.model.trainable_variables),
        )


def train(
    config: TrainConfig,
    strategy: tf.distribute.Strategy | None = None,
    flags_text: str | None = None,
) -> TrainResult:
    """Builds a `Trainer` for `config` and runs it with SIGTERM/SIGINT handling.

    Args:
      config: the resolved settings.
      strategy: overrides `config.strategy`.
      flags_text: the command line's flags (`--flag=value` lines), saved to
        `<logdir>/flags.txt` so the run can be repeated with `--flagfile`.
    """
    trainer = Trainer(config, strategy, flags_text=flags_text)
    with StopRequest() as stop:
        return trainer.run(stop)
