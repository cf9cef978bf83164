"""Fine-tuning: a new run that starts from the weights of another delg-tf logdir or checkpoint.

`delg-train --init_checkpoint=<logdir or prefix>` (an imported official checkpoint, the demo's
model, any run). The new run takes the source's architecture from its `model_config.json` (the
weights only fit that model), its own class count from its data, and starts at step 0 with a
fresh optimizer. Every variable is copied except the two classifiers (ArcFace class weights and
the attention classifier) when the class count differs: those keep their fresh initialisation,
and a message says so. On resume the run's own checkpoint is restored instead.
"""

from __future__ import annotations

import dataclasses
import os

import keras
import tensorflow as tf
from absl import logging

from delg_tf.common.logdir import (
    MODEL_CONFIG_FILE,
    inference_model_config,
    latest_checkpoint,
    model_config_path,
)
from delg_tf.models import DelgModel
from delg_tf.models.model_config import fine_tuning_fields, read_model_config
from delg_tf.training.config import TrainConfig, model_flag
from delg_tf.training.errors import FlagError

# Variables whose shape depends on the class count (paths inside the DelgModel).
CLASSIFIER_PATHS = ("arcface/", "local_head/att_fc/")


@dataclasses.dataclass(frozen=True)
class InitSource:
    """A resolved `--init_checkpoint`: its checkpoint prefix and model config."""

    prefix: str
    config_path: str
    model_config: dict


def resolve_init_checkpoint(path: str) -> InitSource:
    """Finds the checkpoint and the model_config.json of `--init_checkpoint`.

    Raises:
      FlagError: naming the flag and the path, if either is missing.
    """
    prefix = latest_checkpoint(os.fspath(path).rstrip("/"))
    if prefix is None:
        raise FlagError(
            f"--init_checkpoint={path}: no checkpoint found (a delg-tf logdir, its "
            "checkpoints/ directory or a checkpoint prefix)"
        )
    config_path = model_config_path(prefix)
    if config_path is None:
        raise FlagError(
            f"--init_checkpoint={path}: no {MODEL_CONFIG_FILE} next to {prefix} or in its logdir"
        )
    try:
        return InitSource(prefix, config_path, read_model_config(config_path))
    except ValueError as e:
        raise FlagError(f"--init_checkpoint={path}: {e}") from e


def inherit_architecture(config: TrainConfig, source: InitSource) -> TrainConfig:
    """The run's `TrainConfig` with the source's architecture (flags that differ are logged)."""
    changes = {}
    for field in fine_tuning_fields():
        ours = getattr(config.model, field)
        if field in source.model_config and source.model_config[field] != ours:
            changes[field] = source.model_config[field]
            logging.info(
                "--init_checkpoint: --%s=%s from %s (was %s).",
                model_flag(field),
                changes[field],
                source.config_path,
                ours,
            )
    return dataclasses.replace(config, model=dataclasses.replace(config.model, **changes))


def _relative_paths(model: keras.Model) -> dict[str, tf.Variable]:
    prefix = model.name + "/"
    return {
        (v.path[len(prefix) :] if v.path.startswith(prefix) else v.path): v for v in model.variables
    }


def initialize_from(model: DelgModel, source: InitSource) -> list[str]:
    """Copies the source's weights into the run's (built) model.

    Returns:
      The paths left at their fresh initialisation (the classifiers when the class count
      differs; else empty).

    Raises:
      FlagError: if the source does not restore into its own config, or a variable's shape
        differs (e.g. a different --attention_filters).
    """
    src = DelgModel.from_config(inference_model_config(source.model_config))
    src.build((None, None, None, 3))
    status = tf.train.Checkpoint(model=src).read(source.prefix).expect_partial()
    try:
        status.assert_existing_objects_matched()
    except (AssertionError, ValueError) as e:
        raise FlagError(
            f"--init_checkpoint: {source.prefix} does not match {source.config_path}: {e}"
        ) from e
    same_classes = src.num_classes == model.num_classes
    targets = _relative_paths(model)
    skipped = []
    for path, variable in _relative_paths(src).items():
        if not same_classes and path.startswith(CLASSIFIER_PATHS):
            skipped.append(path)
            continue
        if path not in targets or tuple(targets[path].shape) != tuple(variable.shape):
            got = tuple(targets[path].shape) if path in targets else None
            raise FlagError(
                f"--init_checkpoint: {source.prefix} variable {path} {tuple(variable.shape)} "
                f"does not fit this run's model ({got})"
            )
        targets[path].assign(variable)
    if skipped:
        logging.warning(
            "--init_checkpoint: %s has %d classes, this run %d: the ArcFace and attention "
            "classifiers start afresh (%s).",
            source.prefix,
            src.num_classes,
            model.num_classes,
            ", ".join(skipped),
        )
    logging.info("Initialised from %s at step 0 (fresh optimizer).", source.prefix)
    return skipped
