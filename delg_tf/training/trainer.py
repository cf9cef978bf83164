"""The DELG training run: builds everything for a config, then trains, reports and saves.

One code path for every tf.distribute strategy. Each piece has its own file:
`training_state` (model, optimizer, step), `inputs` (training and validation batches),
`train_step` (the step, the compiled multi-step loop and its guards), `evaluation`
(validation accuracy), `reporting` (console, TensorBoard, metrics.jsonl) and `checkpointing`
(the logdir's files). This file decides when each happens.

Deviations from the official `research/delf/delf/python/training/train.py`, each
deliberate: gradients
are clipped after the all-reduce, and bad labels or a NaN/Inf loss stop the run unsaved (both
in `train_step`); the ImageNet backbone weights are loaded when the model is built, before step
0 (the official code ran one step with a random backbone first, so its heads and momentum kept
that update), and not re-read on resume.
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from delg_tf.common import logdir
from delg_tf.training import checkpointing, init_checkpoint, logdir_lock, preflight
from delg_tf.training.config import TrainConfig
from delg_tf.training.errors import NonFiniteLossError
from delg_tf.training.evaluation import Validation
from delg_tf.training.inputs import TrainingInput, checkpoints_iterator, validation_dataset
from delg_tf.training.preemption import StopRequest
from delg_tf.training.reporting import ProgressReport
from delg_tf.training.strategy import build_strategy, is_chief, worker_write_dir
from delg_tf.training.train_step import (
    ChunkResult,
    TrainSteps,
    raise_if_unhealthy,
)
from delg_tf.training.training_state import build_training_state


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


def weights_digest(variables) -> str:
    """sha256 over the values of `variables` in order (identical weights -> identical digest)."""
    digest = hashlib.sha256()
    for variable in variables:
        digest.update(np.ascontiguousarray(variable.numpy()).tobytes())
    return digest.hexdigest()


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
        # TFRecord lists (None for a TFDS run, which reads `config.tfds_name`).
        train_files, validation_files = preflight.input_files(config)
        # Before any TF op: multi-worker collectives must be configured at program start.
        self.strategy = strategy or build_strategy(config.strategy, config.tpu)
        preflight.check_input(config, train_files)
        self.chief = is_chief(self.strategy)
        if self.chief:
            # Before anything is written to the logdir (issue 12: two trainers interleaved).
            logdir_lock.acquire(config.logdir)
        replicas = self.strategy.num_replicas_in_sync
        if config.batch_size % replicas:
            raise preflight.FlagError(
                f"--batch_size={config.batch_size} is not divisible by the {replicas} replicas."
            )
        self.per_replica_batch = config.batch_size // replicas
        checkpoint_dir = logdir.checkpoint_dir(config.logdir)
        resuming = tf.train.get_checkpoint_state(checkpoint_dir) is not None
        init_source = None
        if config.init_checkpoint:
            if config.model.backbone_weights:
                raise preflight.FlagError(
                    "--init_checkpoint and --imagenet_checkpoint both initialise the backbone; "
                    "give one."
                )
            # A resumed fine-tuning run keeps the architecture it recorded at its start.
            init_source = init_checkpoint.resolve_init_checkpoint(
                config.logdir if resuming else config.init_checkpoint
            )
            config = self.config = init_checkpoint.inherit_architecture(config, init_source)
        if resuming:
            config = self.config = checkpointing.keep_recorded_wiring(config, config.logdir)
            restores_input = checkpoints_iterator(config, self.strategy)
            checkpointing.check_resumed_config(
                config,
                config.logdir,
                checkpointing.input_record(train_files, replicas) if restores_input else None,
            )
        # After the resume check, so that a refused run changes nothing in this process.
        if config.op_determinism:
            tf.config.experimental.enable_op_determinism()

        keras.utils.set_random_seed(config.seed)
        state = build_training_state(config, self.strategy, resuming)
        self.model, self.optimizer, self.step = state.model, state.optimizer, state.step
        normalization = self.model.input_normalization
        preflight.check_image_size(
            config.image_size, config.model.backbone, self.model.min_input_size
        )
        if self.chief:
            checkpointing.write_run_files(
                config.logdir, config, self.model.get_config(), flags_text
            )

        train_input = TrainingInput(train_files, config, self.strategy, normalization)
        if self.chief and train_input.checkpointable:  # what the saved iterator is built from
            checkpointing.write_input_record(
                config.logdir, checkpointing.input_record(train_files, replicas)
            )
        objects = {"model": self.model, "optimizer": self.optimizer, "step": self.step}
        if train_input.checkpointable:
            self.train_iterator = train_input.iterator(config.seed)
            objects["iterator"] = self.train_iterator
        self.last_checkpoint = checkpointing.restore_latest(
            objects, checkpoint_dir, optional=("iterator",)
        )
        if self.last_checkpoint:
            logging.info("Resumed from %s at step %d.", self.last_checkpoint, self.current_step)
        elif init_source is not None:
            init_checkpoint.initialize_from(self.model, init_source)
        elif config.model.backbone_weights:
            logging.info("Backbone initialised from %s at step 0.", config.model.backbone_weights)
        if not train_input.checkpointable:
            # A fresh order after a restart, reproducible from (seed, step).
            self.train_iterator = train_input.iterator(config.seed + self.current_step)
        self._manager = tf.train.CheckpointManager(
            tf.train.Checkpoint(**objects),
            worker_write_dir(checkpoint_dir, self.strategy),
            max_to_keep=config.max_to_keep,
            keep_checkpoint_every_n_hours=config.keep_checkpoint_every_n_hours,
        )
        self._validation = (
            Validation(
                self.model,
                self.strategy,
                validation_dataset(validation_files, config, self.strategy, normalization),
                config.model.num_classes,
            )
            if config.has_validation
            else None
        )
        self._train_steps = TrainSteps(config, self.strategy, state, train_input.next_batch)

    @property
    def current_step(self) -> int:
        return int(self.step.numpy())

    def run_chunk(self, num_steps: int, stop_requested: bool = False) -> ChunkResult:
        """Runs `num_steps` training steps in one compiled call and returns host values."""
        return self._train_steps(self.train_iterator, num_steps, stop_requested)

    def evaluate(self) -> dict[str, float]:
        """Global and attention accuracy on the validation batches (no ArcFace margin)."""
        return self._validation()

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
        path = self._manager.save(checkpoint_number=step)
        if self.chief:
            self.last_checkpoint = path
            return path
        shutil.rmtree(self._manager.directory, ignore_errors=True)
        return None

    def _chunk_size(self, step: int) -> int:
        """Steps to the next report, save, validation or the end, at most `steps_per_loop`."""
        config = self.config
        size = min(config.steps_per_loop, config.max_iters - step)
        for interval in (config.report_interval, config.save_interval, config.eval_interval):
            size = min(size, interval - step % interval)
        return size

    def run(self, stop: StopRequest | None = None) -> TrainResult:
        """Trains to `max_iters` or until a stop is requested; saves on the way out.

        Returns:
          A `TrainResult`.

        Raises:
          NonFiniteLossError, LabelRangeError: a bad step; nothing from it was saved.
        """
        config = self.config
        stop = stop or StopRequest()
        step = self.current_step
        metrics: dict[str, float] = {}
        validation = None
        stopped_by = "max_iters"
        saved_step = step if self.last_checkpoint else None
        with ProgressReport(config, self.chief, self.model.input_normalization) as progress:
            while step < config.max_iters:
                chunk = self.run_chunk(self._chunk_size(step), stop.requested)
                step = self.current_step
                raise_if_unhealthy(chunk, step, config.model.num_classes, self.last_checkpoint)
                progress.add(chunk)
                finished = step >= config.max_iters
                if chunk.stop or finished or step % config.report_interval == 0:
                    metrics = progress.report(step, chunk)
                if self._validation is not None and (step % config.eval_interval == 0 or finished):
                    validation = self.evaluate()
                    progress.report_validation(step, validation)
                if chunk.stop or finished or step % config.save_interval == 0:
                    self.save()
                    saved_step = step
                progress.flush()
                if chunk.stop:
                    stopped_by = stop.signal_name or "stop request"
                    logging.warning("Stopped by %s at step %d; checkpoint saved.", stopped_by, step)
                    break
            if saved_step != step:
                self.save()
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
    try:
        trainer = Trainer(config, strategy, flags_text=flags_text)
        with StopRequest() as stop:
            return trainer.run(stop)
    finally:
        logdir_lock.release(config.logdir)
