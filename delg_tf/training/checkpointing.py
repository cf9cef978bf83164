"""Checkpoints and the files a run leaves in its logdir.

The logdir contract the export tool reads (`model_config.json`, `checkpoints/`) is
`delg_tf.common.logdir`; this module adds the files only training reads back:
`<logdir>/train_config.json`, the resolved `TrainConfig` in its flat form (a resumed run must
keep the model's weight-shaping fields), and `<logdir>/flags.txt`, the flags in a form
`--flagfile` accepts.

Crash safety comes from TF's checkpoint protocol: the data and index files are written first and
the `checkpoint` state file is replaced atomically afterwards, so a kill -9 at any moment leaves
the state file naming the previous complete checkpoint. `restore_latest` also falls back to older
checkpoints if the newest one cannot be read (e.g. a truncated file on a full disk).
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import tensorflow as tf
from absl import logging

from delg_tf.common.atomic_files import write_gfile_text_atomically as write_text_atomically
from delg_tf.common.flags_record import FLAGS_RECORD
from delg_tf.common.logdir import MODEL_CONFIG_FILE, inference_model_config
from delg_tf.models.attention_wiring import CONFIG_KEY, attention_wiring_of
from delg_tf.models.model_config import weight_shaping_fields
from delg_tf.training.config import TrainConfig, model_flag
from delg_tf.training.errors import FlagError

TRAIN_CONFIG_FILE = "train_config.json"
FLAGS_FILE = FLAGS_RECORD  # through tf.io.gfile below: a logdir may be on gs://


def write_model_config(model_config: dict, logdir: str) -> str:
    """Writes `inference_model_config(model_config)` to `<logdir>/model_config.json` atomically."""
    path = os.path.join(logdir, MODEL_CONFIG_FILE)
    write_text_atomically(path, json.dumps(inference_model_config(model_config), indent=2))
    return path


def write_run_files(
    logdir: str, config: TrainConfig, model_config: dict, flags_text: str | None
) -> None:
    """Writes `train_config.json`, `model_config.json` and (if given) `flags.txt` to `logdir`."""
    tf.io.gfile.makedirs(logdir)
    write_text_atomically(os.path.join(logdir, TRAIN_CONFIG_FILE), config.to_json())
    write_model_config(model_config, logdir)
    if flags_text is not None:
        write_text_atomically(os.path.join(logdir, FLAGS_FILE), flags_text)


def keep_recorded_wiring(config: TrainConfig, logdir: str) -> TrainConfig:
    """The config a resumed run trains with: the attention wiring its model_config.json names.

    A run started before the wiring was recorded trained the `"pre_2021"` wiring; it keeps
    it (with one warning) whatever `--attention_wiring` says, so a resume never changes the
    model under its checkpoint.
    """
    path = os.path.join(logdir, MODEL_CONFIG_FILE)
    if not tf.io.gfile.exists(path):
        return config
    with tf.io.gfile.GFile(path) as f:
        recorded = json.load(f)
    if CONFIG_KEY in recorded:
        return config  # check_resumed_config compares it with the flag
    model = dataclasses.replace(config.model, attention_wiring=attention_wiring_of(recorded, path))
    return dataclasses.replace(config, model=model)


def check_resumed_config(config: TrainConfig, logdir: str) -> None:
    """Refuses to resume a logdir whose model differs (the restore error would be cryptic).

    Raises:
      FlagError: naming the first model-defining flag that differs from `train_config.json`.
    """
    path = os.path.join(logdir, TRAIN_CONFIG_FILE)
    if not tf.io.gfile.exists(path):
        return
    with tf.io.gfile.GFile(path) as f:
        previous = json.load(f)
    current = config.to_flat()
    for name in map(model_flag, weight_shaping_fields()):
        if name in previous and previous[name] != current[name]:
            raise FlagError(
                f"--{name}={current[name]} but the run in {logdir} was trained with "
                f"{previous[name]}; use a new --logdir."
            )


def all_finite(variables) -> bool:
    """Whether every floating-point value of `variables` is finite (no NaN, no Inf)."""
    for variable in variables:
        value = variable.numpy() if hasattr(variable, "numpy") else np.asarray(variable)
        if np.issubdtype(value.dtype, np.floating) and not np.all(np.isfinite(value)):
            return False
    return True


def _top_level_names(prefix: str) -> set[str]:
    return {name.split("/")[0] for name, _ in tf.train.list_variables(prefix)}


def restore_latest(objects: dict, directory: str, optional: tuple[str, ...] = ()) -> str | None:
    """Restores the newest readable checkpoint in `directory` into `objects`.

    Tries the checkpoints named in the state file from newest to oldest and stops at the first
    one that reads; each failure is logged with its reason. Every object must be matched by the
    checkpoint, except those named in `optional` that the checkpoint does not hold (e.g. an
    input iterator a previous run did not save).

    Args:
      objects: name -> trackable, as given to `tf.train.Checkpoint(**objects)` when saving.
      directory: a `CheckpointManager` directory.
      optional: names that may be absent from the checkpoint.

    Returns:
      The restored prefix, or None if the directory holds no checkpoint.

    Raises:
      RuntimeError: if checkpoints exist but none can be read.
    """
    state = tf.train.get_checkpoint_state(directory)
    if state is None or not state.model_checkpoint_path:
        return None
    candidates = list(state.all_model_checkpoint_paths) or [state.model_checkpoint_path]
    if state.model_checkpoint_path not in candidates:
        candidates.append(state.model_checkpoint_path)
    errors = []
    # `get_checkpoint_state` already joins relative entries with `directory` (relative to the
    # working directory for a relative logdir); joining again broke every relative --logdir.
    for prefix in reversed(candidates):
        try:
            present = _top_level_names(prefix)
            chosen = {k: v for k, v in objects.items() if k in present or k not in optional}
            for name in set(objects) - set(chosen):
                logging.warning("%s holds no %r; it starts afresh.", prefix, name)
            tf.train.Checkpoint(**chosen).read(prefix).assert_existing_objects_matched()
            return prefix
        # A torn file fails in many ways (OpError, IndexError, ValueError...); every failure
        # falls back to the next checkpoint and is reported if none reads.
        except Exception as error:  # noqa: BLE001
            logging.warning("Cannot restore %s (%s); trying an older checkpoint.", prefix, error)
            errors.append(f"{prefix}: {error}")
    raise RuntimeError(f"No readable checkpoint in {directory}:\n" + "\n".join(errors))
