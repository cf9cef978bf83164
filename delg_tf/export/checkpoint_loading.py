"""Rebuilds a trained DelgModel from a training checkpoint, without importing delg_tf.training.

The training logdir contract (`model_config.json`, `checkpoints/`) is `delg_tf.common.logdir`.
"""

from __future__ import annotations

import os
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from delg_tf.common import logdir
from delg_tf.models import DelgModel
from delg_tf.models.model_config import read_model_config

COMPUTE_DTYPES = {"float32": "float32", "bfloat16": "mixed_bfloat16"}


def resolve_checkpoint(ckpt_path: str) -> tuple[str, str]:
    """Finds the checkpoint prefix and the model config for `--ckpt_path`.

    Args:
      ckpt_path: A training logdir (then its latest checkpoint in `checkpoints/`), a checkpoint
        directory, or a checkpoint prefix such as `<logdir>/checkpoints/ckpt-1000`.

    Returns:
      (checkpoint prefix, path of model_config.json).

    Raises:
      FileNotFoundError: naming the path, when no checkpoint or no model_config.json is found.
    """
    ckpt_path = os.fspath(ckpt_path).rstrip("/")
    prefix = logdir.latest_checkpoint(ckpt_path)
    if not prefix:
        raise FileNotFoundError(
            f"--ckpt_path {ckpt_path!r}: no checkpoint found (expected a prefix with a "
            f".index file, or a training logdir with {logdir.CHECKPOINT_DIR}/checkpoint)"
        )
    config_path = logdir.model_config_path(prefix)
    if config_path:
        return prefix, config_path
    raise FileNotFoundError(
        f"--ckpt_path {ckpt_path!r}: no {logdir.MODEL_CONFIG_FILE} next to checkpoint {prefix} "
        "or in its logdir"
    )


def build_model(config: dict[str, Any], compute_dtype: str = "float32") -> DelgModel:
    """Builds an inference DelgModel from its config, all variables created.

    Args:
      config: `DelgModel.get_config()`.
      compute_dtype: "float32" or "bfloat16" (mixed_bfloat16: float32 variables).
    """
    if compute_dtype not in COMPUTE_DTYPES:
        raise ValueError(
            f"compute_dtype must be one of {list(COMPUTE_DTYPES)}, got {compute_dtype!r}"
        )
    config = logdir.inference_model_config(config)  # the compute dtype is chosen here
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(COMPUTE_DTYPES[compute_dtype])
    try:
        model = DelgModel.from_config(config)
        model.build((None, None, None, 3))
        model(tf.zeros([1, 64, 64, 3]), training=False)
    finally:
        keras.config.set_dtype_policy(previous)
    return model


def load_model_from_checkpoint(
    ckpt_path: str, compute_dtype: str = "float32"
) -> tuple[DelgModel, dict[str, Any], str]:
    """Rebuilds the model and restores every one of its variables from a training checkpoint.

    Args:
      ckpt_path: See `resolve_checkpoint`.
      compute_dtype: "float32" or "bfloat16".

    Returns:
      (model, model config, checkpoint prefix).

    Raises:
      ValueError: naming the checkpoint, if a model variable is missing from it, has the wrong
        shape, or is not finite.
    """
    prefix, config_path = resolve_checkpoint(ckpt_path)
    config = read_model_config(config_path)
    model = build_model(config, compute_dtype)
    status = tf.train.Checkpoint(model=model).read(prefix)
    status.expect_partial()  # optimizer and step are not needed for inference
    try:
        status.assert_existing_objects_matched()
    except AssertionError as e:
        raise ValueError(
            f"checkpoint {prefix} does not hold every variable of the model built from "
            f"{config_path}: {e}"
        ) from e
    except ValueError as e:  # shape mismatch
        raise ValueError(f"checkpoint {prefix} does not match {config_path}: {e}") from e
    for variable in model.variables:
        if not np.all(np.isfinite(variable.numpy())):
            raise ValueError(f"checkpoint {prefix}: variable {variable.path} is not finite")
    return model, config, prefix
