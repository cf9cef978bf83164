"""Checkpoints and the files a run leaves in its logdir.

The logdir contract the export tool reads (`model_config.json`, `checkpoints/`) is
`delg_tf.common.logdir`; this module adds the files only training reads back:
`<logdir>/train_config.json`, the resolved `TrainConfig` in its flat form (a resumed run must
keep the model's weight-shaping fields), `<logdir>/train_input.json`, what the saved input
iterator was built from (a resume that restores it must keep `INPUT_FIELDS`, the training files
and the replica count), and `<logdir>/flags.txt`, the flags in a form `--flagfile` accepts.

Crash safety comes from TF's checkpoint protocol: the data and index files are written first and
the `checkpoint` state file is replaced atomically afterwards, so a kill -9 at any moment leaves
the state file naming the previous complete checkpoint. `restore_latest` also falls back to older
checkpoints if the newest one cannot be read (e.g. a truncated file on a full disk).
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import numpy as np
import tensorflow as tf
from absl import logging

from delg_tf.common.atomic_files import write_gfile_text_atomically as write_text_atomically
from delg_tf.common.flags_record import FLAGS_RECORD
from delg_tf.common.logdir import MODEL_CONFIG_FILE, inference_model_config, latest_checkpoint
from delg_tf.models.attention_wiring import CONFIG_KEY, attention_wiring_of
from delg_tf.models.model_config import weight_shaping_fields
from delg_tf.training.config import TrainConfig, model_flag
from delg_tf.training.errors import FlagError

TRAIN_CONFIG_FILE = "train_config.json"
FLAGS_FILE = FLAGS_RECORD  # through tf.io.gfile below: a logdir may be on gs://
# TrainConfig fields that define the checkpointed input iterator's pipeline. Measured with TF 2.21
# on a 2-step resnet_tiny run resumed with one field changed: these fail, at the restore ("No
# readable checkpoint ... dataset definition has changed": op_determinism, the TFDS split) or at
# the first step (an InvalidArgumentError on the batch shape: batch_size, image_size). The
# training files (their count sets the interleave's cycle length) and the replica count (it sets
# the per-replica batch) fail the same way and are checked from `INPUT_RECORD_FILE`. Changing
# use_augmentation, random_flip, deterministic_input, seed, mixed_precision or the strategy at an
# equal replica count resumes (tests/training/test_resume_changed_flags.py).
INPUT_FIELDS = ("batch_size", "image_size", "op_determinism", "tfds_name", "tfds_split")
INPUT_RECORD_FILE = "train_input.json"


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


def input_record(train_files: list[str] | None, num_replicas: int) -> dict[str, Any]:
    """What `INPUT_RECORD_FILE` holds: what the input iterator was built from.

    Args:
      train_files: the training TFRecords read (None for a TFDS run); only their names are
        kept, so a resume may read a copy of the data from another folder.
      num_replicas: the strategy's replicas in sync.
    """
    return {
        "train_files": None if train_files is None else [os.path.basename(f) for f in train_files],
        "num_replicas": int(num_replicas),
    }


def _latest_holds_iterator(logdir: str) -> bool:
    """Whether the newest checkpoint holds an input iterator (True if it cannot be read: the
    check then errs on the side of refusing)."""
    prefix = latest_checkpoint(logdir)
    if prefix is None:
        return False
    try:
        return "iterator" in _top_level_names(prefix)
    except Exception:  # noqa: BLE001 - a torn checkpoint; restore_latest reports it
        return True


def write_input_record(logdir: str, record: dict[str, Any]) -> None:
    """Writes `<logdir>/train_input.json` (chief only, once the run's checks passed)."""
    write_text_atomically(os.path.join(logdir, INPUT_RECORD_FILE), json.dumps(record, indent=2))


def _read_json(path: str) -> dict[str, Any] | None:
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


def _differs(flag: str, value: Any, logdir: str, previous: Any, why: str) -> FlagError:
    return FlagError(f"--{flag}={value} differs from the run in {logdir} ({previous}); {why}")


def check_resumed_config(
    config: TrainConfig, logdir: str, resumed_input: dict[str, Any] | None = None
) -> None:
    """Refuses, before any work, a resume whose checkpoint could not be restored or continued.

    The restore errors would be cryptic: "No readable checkpoint ... dataset definition has
    changed" with a traceback, or a shape error after the first step.

    Args:
      config: the resumed run's settings.
      logdir: its logdir.
      resumed_input: `input_record` of this run if it restores a saved input iterator
        (`config.checkpoint_iterator` on a strategy whose iterator is checkpointed), else None:
        without a restored iterator (or when the newest checkpoint holds none) the
        input-defining settings may change.

    Raises:
      FlagError: `--<flag>=<new> differs from the run in <logdir> (<old>); ...`, for the first
        weight-shaping model flag that differs from `train_config.json`, or, when the
        saved iterator is restored, the first of `INPUT_FIELDS`, the training files or the
        replica count.
    """
    previous = _read_json(os.path.join(logdir, TRAIN_CONFIG_FILE))
    if previous is None:
        return
    current = config.to_flat()
    for name in map(model_flag, weight_shaping_fields()):
        if name in previous and previous[name] != current[name]:
            raise _differs(
                name,
                current[name],
                logdir,
                previous[name],
                "the checkpoint holds another model: use the same value or a new --logdir.",
            )
    if resumed_input is None:
        return
    if not _latest_holds_iterator(logdir):
        return  # the input starts afresh
    recorded = _read_json(os.path.join(logdir, INPUT_RECORD_FILE))
    why = (
        "the checkpoint holds the input pipeline's position: use the same value, "
        "--checkpoint_iterator=false to restart the input, or a new --logdir."
    )
    for field in INPUT_FIELDS:
        if field in previous and previous[field] != current[field]:
            raise _differs(field, current[field], logdir, previous[field], why)
    if recorded is None:
        return  # written before train_input.json: the files and replicas are unknown
    files, old_files = resumed_input["train_files"], recorded["train_files"]
    if files is not None and old_files is not None and files != old_files:
        changed = sorted(set(files) ^ set(old_files)) or ["their order"]
        raise _differs(
            "train_file_pattern",
            config.train_file_pattern,
            logdir,
            f"{len(old_files)} files, this run matches {len(files)}; differing: {changed[0]}",
            why,
        )
    if resumed_input["num_replicas"] != recorded["num_replicas"]:
        raise _differs(
            "strategy",
            f"{config.strategy} with {resumed_input['num_replicas']} replicas",
            logdir,
            f"{recorded['num_replicas']} replicas: the per-replica batch is in the saved input",
            why,
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
