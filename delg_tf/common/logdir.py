"""The training logdir contract: written by the trainer, read by the exporter.

- `<logdir>/model_config.json` (`MODEL_CONFIG_FILE`): `DelgModel.get_config()` as inference needs
  it (`inference_model_config`), written at the start of a run.
- `<logdir>/checkpoints/` (`CHECKPOINT_DIR`): a `tf.train.CheckpointManager` over
  `tf.train.Checkpoint(model=model, optimizer=..., step=...[, iterator=...])`.

Paths go through `tf.io.gfile`, so a logdir may be on gs://.
"""

from __future__ import annotations

import os
from typing import Any

import tensorflow as tf

CHECKPOINT_DIR = "checkpoints"
MODEL_CONFIG_FILE = "model_config.json"


def checkpoint_dir(logdir: str) -> str:
    """`<logdir>/checkpoints`."""
    return os.path.join(logdir, CHECKPOINT_DIR)


def latest_checkpoint(path: str) -> str | None:
    """The newest checkpoint prefix for a logdir, a checkpoint directory, or a prefix itself.

    Args:
      path: a training logdir, its `checkpoints/` directory, or a checkpoint prefix such as
        `<logdir>/checkpoints/ckpt-1000`.

    Returns:
      A checkpoint prefix, or None if there is none.
    """
    path = os.fspath(path).rstrip("/")
    if tf.io.gfile.exists(path + ".index"):
        return path
    for directory in (checkpoint_dir(path), path):
        if tf.io.gfile.isdir(directory):
            prefix = tf.train.latest_checkpoint(directory)
            if prefix:
                return prefix
    return None


def model_config_path(prefix: str) -> str | None:
    """The `model_config.json` of a checkpoint: next to it, or in the logdir above it (or None)."""
    directory = os.path.dirname(prefix)
    for candidate in (
        os.path.join(directory, MODEL_CONFIG_FILE),
        os.path.join(os.path.dirname(directory), MODEL_CONFIG_FILE),
    ):
        if tf.io.gfile.exists(candidate):
            return candidate
    return None


def inference_model_config(model_config: dict[str, Any]) -> dict[str, Any]:
    """The model config as export rebuilds it: no ImageNet reload, no cross-replica BatchNorm.

    The dtype policy is dropped too: sub-layers take the global Keras policy when built, so a
    model trained with `mixed_bfloat16` is rebuilt in whatever policy the exporter sets
    (float32 by default); the weights are float32 either way.
    """
    config = dict(model_config)
    config.pop("dtype", None)
    config["backbone_weights"] = None  # the checkpoint holds the weights
    config["synchronized_bn"] = False
    return config
