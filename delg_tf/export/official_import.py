"""`delg-import-official`: an official DELG TF2 checkpoint -> a delg-tf training logdir.

The logdir follows the contract of `checkpoint_loading` (what `delg-export` reads and what
`delg-train --init_checkpoint` starts from): `<output_dir>/model_config.json` and
`<output_dir>/checkpoints/ckpt-0` holding `tf.train.Checkpoint(model=...)`, plus
`import_record.json` saying where the weights came from. Kept out of `delg_tf.training` because
export must never import it; the mapping itself is `delg_tf.models.official_checkpoint`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import tensorflow as tf

from delg_tf.common.atomic_files import write_text_atomically
from delg_tf.common.logdir import CHECKPOINT_DIR, MODEL_CONFIG_FILE
from delg_tf.models.official_checkpoint import (
    ImportOptions,
    OfficialCheckpointError,
    load_official_checkpoint,
    official_model_variables,
)

IMPORT_RECORD_FILE = "import_record.json"
OFFICIAL_CHECKPOINT_SUBDIR = "delf_tf2-ckpt"  # where the official train.py saves


def resolve_official_checkpoint(path: str) -> str:
    """The checkpoint prefix for `--checkpoint`: a prefix, a checkpoint dir or an official logdir.

    Raises:
      OfficialCheckpointError: naming the path when no checkpoint is found.
    """
    path = os.fspath(path).rstrip("/")
    if tf.io.gfile.exists(path + ".index"):
        return path
    for directory in (os.path.join(path, OFFICIAL_CHECKPOINT_SUBDIR), path):
        if tf.io.gfile.isdir(directory):
            prefix = tf.train.latest_checkpoint(directory)
            if prefix:
                return prefix
    raise OfficialCheckpointError(
        f"--checkpoint={path}: no checkpoint found (expected a prefix with a .index file, a "
        f"directory with a 'checkpoint' file, or an official logdir with "
        f"{OFFICIAL_CHECKPOINT_SUBDIR}/)"
    )


def import_official_checkpoint(
    checkpoint: str, output_dir: str, options: ImportOptions | None = None
) -> dict[str, Any]:
    """Imports an official DELG checkpoint into a new delg-tf logdir.

    Args:
      checkpoint: Official logdir, its `delf_tf2-ckpt/` directory, or a checkpoint prefix.
      output_dir: The delg-tf logdir to write; must not hold a checkpoint already.
      options: What the variables do not record (strides, GeM power, margin, wiring).

    Returns:
      The import record written to `import_record.json`.

    Raises:
      OfficialCheckpointError: no checkpoint, wrong architecture, or shape mismatch.
      FileExistsError: `output_dir` already holds a checkpoint or a model config.
    """
    prefix = resolve_official_checkpoint(checkpoint)
    for name in (MODEL_CONFIG_FILE, CHECKPOINT_DIR):
        if tf.io.gfile.exists(os.path.join(output_dir, name)):
            raise FileExistsError(
                f"--output_dir={output_dir} already holds {name}; refusing to overwrite"
            )
    model, config = load_official_checkpoint(prefix, options)
    variables = official_model_variables(prefix)
    tf.io.gfile.makedirs(output_dir)
    # Write the checkpoint first and the config last: a logdir with a config is complete.
    manager = tf.train.CheckpointManager(
        tf.train.Checkpoint(model=model), os.path.join(output_dir, CHECKPOINT_DIR), 1
    )
    saved = manager.save(checkpoint_number=0)
    record = {
        "source_checkpoint": os.path.abspath(prefix),
        "official_model_variables": len(variables),
        "delg_tf_variables": len(model.variables),
        "skipped": "optimizer state (optimizer/..., .OPTIMIZER_SLOT)",
        "options": dataclasses.asdict(options or ImportOptions()),
        "checkpoint": saved,
    }
    write_text_atomically(
        os.path.join(output_dir, IMPORT_RECORD_FILE), json.dumps(record, indent=2) + "\n"
    )
    write_text_atomically(
        os.path.join(output_dir, MODEL_CONFIG_FILE), json.dumps(config, indent=2) + "\n"
    )
    return record
