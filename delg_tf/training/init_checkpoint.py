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
import json
import os

import keras
import tensorflow as tf
from absl import logging

from delg_tf.common.logdir import MODEL_CONFIG_FILE, latest_checkpoint
from delg_tf.models import DelgModel
from delg_tf.models.attention_wiring import attention_wiring_of
from delg_tf.training.preflight import FlagError

# TrainConfig field <- DelgModel config key: the architecture a fine-tuned run inherits.
INHERITED_FIELDS = {
    "backbone": "backbone",
    "block3_strides": "block3_strides",
    "delg_gem_power": "gem_power",
    "delg_embedding_layer_dim": "embedding_dim",
    "delg_scale_factor_init": "arcface_scale",
    "use_autoencoder": "use_autoencoder",
    "autoencoder_dimensions": "autoencoder_dim",
    "attention_wiring": "attention_wiring",
}
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
    ckpt_dir = os.path.dirname(prefix)
    for candidate in (
        os.path.join(ckpt_dir, MODEL_CONFIG_FILE),
        os.path.join(os.path.dirname(ckpt_dir), MODEL_CONFIG_FILE),
    ):
        if tf.io.gfile.exists(candidate):
            with tf.io.gfile.GFile(candidate) as f:
                try:
                    config = json.load(f)
                except json.JSONDecodeError as e:
                    raise FlagError(f"--init_checkpoint={path}: {candidate}: {e}") from e
            config["attention_wiring"] = attention_wiring_of(config, candidate)
            return InitSource(prefix, candidate, config)
    raise FlagError(
        f"--init_checkpoint={path}: no {MODEL_CONFIG_FILE} next to {prefix} or in its logdir"
    )


def inherit_architecture(config, source: InitSource):
    """The run's `TrainConfig` with the source's architecture (flags that differ are logged)."""
    changes = {}
    for field, key in INHERITED_FIELDS.items():
        if key in source.model_config and source.model_config[key] != getattr(config, field):
            changes[field] = source.model_config[key]
    for field, value in changes.items():
        logging.info(
            "--init_checkpoint: --%s=%s from %s (was %s).",
            field,
            value,
            source.config_path,
            getattr(config, field),
        )
    return dataclasses.replace(config, **changes)


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
    config = {k: v for k, v in source.model_config.items() if k != "dtype"}
    config.update(backbone_weights=None, synchronized_bn=False)
    src = DelgModel.from_config(config)
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
