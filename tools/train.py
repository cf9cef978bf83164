"""Trains DELG: `delg-train --flagfile=experiments/r50_delg_gldv2_clean.flags --logdir=...`.

A thin absl binary: flags -> `TrainConfig` -> `delg_tf.training.trainer.train`. Flag names are
those of the official `research/delf/delf/python/training/train.py` wherever one exists, so
official command lines keep working; `--autoencoder_dimensions` is an int here (the official
DEFINE_float is rejected by Keras 3 as a Conv2D filter count).

The input is TFRecords (`--train_file_pattern`) or any prepared TFDS image-classification
dataset (`--tfds_name`, e.g. `--tfds_name=cifar10 --tfds_data_dir=~/tensorflow_datasets`);
`--num_classes` then defaults to the dataset's label feature. Nothing is downloaded: prepare the
dataset first with `tfds build`.

Runs resume automatically from `<logdir>/checkpoints` (one trainer per logdir: a second one is
refused). SIGTERM (preemption) or Ctrl-C saves a checkpoint and exits with status 4 (a re-run
resumes); a NaN/Inf loss or a bad label stops with a message naming the step and keeps the last
good checkpoint (status 2). Exit status: 0 finished, 2 bad flag/input, 4 interrupted, 1 a bug.
"""

from __future__ import annotations

import os
import sys

from absl import flags, logging

from delg_tf.training.config import (
    NON_NEGATIVE_FIELDS,
    POSITIVE_FIELDS,
    STRATEGIES,
    TrainConfig,
    check_input_source,
)
from delg_tf.training.errors import FlagError, TrainingError
from delg_tools import cli

FLAGS = flags.FLAGS
TOOL = "delg-train"

# --- Official train.py flags (same names and defaults unless noted).
flags.DEFINE_string("logdir", "/tmp/delf", "Where checkpoints, summaries and configs go.")
flags.DEFINE_string(
    "train_file_pattern",
    None,
    "Glob (comma-separated globs allowed) of training TFRecords; required unless --tfds_name.",
)
flags.DEFINE_string(
    "validation_file_pattern",
    "",
    "Glob of validation TFRecords; empty: no validation (the official default was "
    "/tmp/data/validation*).",
)
flags.DEFINE_enum(
    "dataset_version",
    None,
    ["gld_v1", "gld_v2", "gld_v2_clean"],
    "Class count of an official dataset, used only if neither --num_classes nor a "
    "relabeling.csv next to the training files gives it.",
)
flags.DEFINE_integer("seed", 0, "Seed of the input pipeline and the initial weights.")
flags.DEFINE_float("initial_lr", 0.01, "Initial learning rate (decays linearly to 0).")
flags.DEFINE_integer("batch_size", 32, "Global batch size (summed over all replicas).")
flags.DEFINE_integer("max_iters", 500000, "Training steps; the learning rate reaches 0 here.")
flags.DEFINE_boolean("block3_strides", True, "Local features at stride 32 (official default).")
flags.DEFINE_boolean("use_augmentation", True, "Inception-style random crop in training.")
flags.DEFINE_string(
    "imagenet_checkpoint",
    None,
    "Backbone initialisation at step 0: a Keras .h5 weights file, or 'imagenet' (download).",
)
flags.DEFINE_float("attention_loss_weight", 1.0, "Weight of the attention cross-entropy.")
flags.DEFINE_boolean(
    "delg_global_features", True, "Must be True: this project trains DELG (global + local)."
)
flags.DEFINE_float("delg_gem_power", 3.0, "GeM power p (fixed).")
flags.DEFINE_integer("delg_embedding_layer_dim", 2048, "Global descriptor size.")
flags.DEFINE_float("delg_scale_factor_init", 45.25, "ArcFace scale s (fixed, as officially).")
flags.DEFINE_float("delg_arcface_margin", 0.1, "ArcFace margin m (radians).")
flags.DEFINE_integer("image_size", 321, "Training crop side in pixels (the paper used 512).")
flags.DEFINE_boolean("use_autoencoder", True, "Reduce local descriptors with the autoencoder.")
flags.DEFINE_float("reconstruction_loss_weight", 10.0, "Weight of the reconstruction MSE.")
flags.DEFINE_integer("autoencoder_dimensions", 128, "Local descriptor size (autoencoder width).")

# --- Added here.
flags.DEFINE_string("backbone", "resnet50", "Backbone: resnet50, resnet101 or resnet_tiny.")
flags.DEFINE_string(
    "init_checkpoint",
    "",
    "Fine-tune: start a new run (step 0, fresh optimizer) from the weights of this delg-tf "
    "logdir or checkpoint prefix, e.g. a delg-import-official output. Its model_config.json "
    "sets the architecture; the classifiers restart if the class count differs.",
)
flags.DEFINE_enum(
    "attention_wiring",
    "paper",
    ["paper", "pre_2021"],
    "Local head: 'paper' (attention on conv4, pooling over the reconstruction; official since "
    "2021) or 'pre_2021' (attention on the reconstruction). A resumed run keeps its own.",
)
flags.DEFINE_integer(
    "num_classes",
    None,
    "Training classes; default: the rows of relabeling.csv next to the data, or the class count "
    "of --tfds_label_key.",
)
flags.DEFINE_string(
    "tfds_name",
    "",
    "Train from this prepared TFDS image-classification dataset instead of TFRecords (e.g. "
    "'cifar10', 'mnist:3.*.*'); empty: use --train_file_pattern. Never downloads.",
)
flags.DEFINE_string(
    "tfds_data_dir", "", "TFDS data directory of --tfds_name; empty: the TFDS default."
)
flags.DEFINE_string("tfds_split", "train", "TFDS training split, e.g. 'train[:90%]'.")
flags.DEFINE_string(
    "tfds_validation_split", "", "TFDS validation split, e.g. 'test'; empty: no validation."
)
flags.DEFINE_string("tfds_image_key", "image", "TFDS feature holding the image.")
flags.DEFINE_string(
    "tfds_label_key", "label", "TFDS feature holding the class (a ClassLabel gives its count)."
)
flags.DEFINE_enum("strategy", "default", list(STRATEGIES), "tf.distribute strategy.")
flags.DEFINE_string("tpu", "", "TPU name or grpc:// address for --strategy=tpu.")
flags.DEFINE_boolean("mixed_precision", False, "Compute in bfloat16 (mixed_bfloat16 policy).")
flags.DEFINE_boolean(
    "jit_compile", False, "XLA-compile the forward and backward pass (GPU/TPU; slower on CPU)."
)
flags.DEFINE_integer("steps_per_loop", 1, "Training steps per compiled loop call (TPU: 100+).")
flags.DEFINE_integer("save_interval", 1000, "Checkpoint every this many steps.")
flags.DEFINE_integer("eval_interval", 1000, "Validate every this many steps.")
flags.DEFINE_integer("report_interval", 100, "Console line and summaries every this many steps.")
flags.DEFINE_integer(
    "eval_batches", 0, "Validation batches per evaluation; 0: 50000 // batch_size (official)."
)
flags.DEFINE_boolean(
    "sync_batch_norm", True, "Cross-replica BatchNorm statistics (replica-count invariant)."
)
flags.DEFINE_boolean("random_flip", False, "Random horizontal flips (off, as in the paper).")
flags.DEFINE_boolean("deterministic_input", False, "Fixed input order (slower pipeline).")
flags.DEFINE_boolean("op_determinism", False, "tf.config.experimental.enable_op_determinism().")
flags.DEFINE_boolean(
    "checkpoint_iterator",
    True,
    "Save the input pipeline position (exact resume). It stores the shuffle buffer: turn off "
    "for large images (GLDv2), which then resume with a fresh shuffle seeded by the step.",
)
flags.DEFINE_integer("max_to_keep", 10, "Checkpoints kept (plus one every 3 hours).")


def config_from_flags(values: flags.FlagValues) -> TrainConfig:
    """Resolves the flags into a `TrainConfig`, checking what can be checked cheaply.

    Raises:
      FlagError: naming the flag.
    """
    from delg_tf.training import preflight

    if not values.delg_global_features:
        raise FlagError(
            "--delg_global_features=false (DELF-only training) is not supported; DELG trains "
            "global and local features together."
        )
    if os.path.exists(values.logdir) and not os.path.isdir(values.logdir):
        raise FlagError(f"--logdir={values.logdir} is a file, not a directory.")
    train_file_pattern = values.train_file_pattern or ""
    check_input_source(
        train_file_pattern=train_file_pattern,
        validation_file_pattern=values.validation_file_pattern,
        tfds_name=values.tfds_name,
        tfds_split=values.tfds_split,
        tfds_validation_split=values.tfds_validation_split,
    )
    if values.tfds_name:
        # Metadata only: the splits are opened by the trainer, after the strategy exists.
        num_classes = preflight.resolve_tfds_num_classes(
            values.num_classes,
            name=values.tfds_name,
            data_dir=values.tfds_data_dir,
            image_key=values.tfds_image_key,
            label_key=values.tfds_label_key,
        )
    else:
        preflight.match_files("train_file_pattern", train_file_pattern)
        num_classes = preflight.resolve_num_classes(
            values.num_classes, train_file_pattern, values.dataset_version
        )
    # Every setting with a delg-train flag takes it; the model's under its official flag name
    # (`MODEL_FLAGS`: e.g. --delg_embedding_layer_dim -> ModelConfig.embedding_dim).
    own = {flag.name: flag.value for flag in values.get_flags_for_module(sys.modules[__name__])}
    settings = {name: own[name] for name in TrainConfig.flat_names() if name in own}
    settings.update(train_file_pattern=train_file_pattern, num_classes=num_classes)
    return TrainConfig.from_flat(settings)


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise cli.UsageError(f"unexpected arguments: {argv[1:]}")
    from delg_tf.training import trainer

    try:
        config = config_from_flags(FLAGS)
        result = trainer.train(config, flags_text=FLAGS.flags_into_string())
    except FlagError as error:
        cli.fail(TOOL, str(error))
    except TrainingError as error:
        # Names the step and the last good checkpoint; the settings or data must change.
        logging.error("%s: %s", type(error).__name__, error)
        cli.fail(TOOL, f"{type(error).__name__}: {error}")
    logging.info(
        "Finished at step %d (%s). Checkpoint: %s. Weights sha256: %s",
        result.step,
        result.stopped_by,
        result.checkpoint,
        result.weights_digest,
    )
    if result.stopped_by != "max_iters":
        # Not 0: `delg-train ... && delg-export ...` must not export a half-trained model.
        cli.fail(
            TOOL,
            f"stopped by {result.stopped_by} at step {result.step} of {config.max_iters}; "
            f"checkpoint {result.checkpoint} saved; run the same command again to resume.",
            cli.EXIT_INTERRUPTED,
        )
    return cli.EXIT_OK


def run() -> None:
    """Console-script entry point (`delg-train`)."""
    # The config's numeric checks, on the flags this binary defines: one line before any work.
    cli.require_positive(*(name for name in POSITIVE_FIELDS if name in FLAGS))
    cli.require_non_negative(*(name for name in NON_NEGATIVE_FIELDS if name in FLAGS))
    cli.run(main, tool=TOOL, module=__name__)


if __name__ == "__main__":
    run()
