"""delg-import-official: a checkpoint of the official DELG TF2 train.py -> a delg-tf logdir.

  delg-import-official --checkpoint=/data/official_logdir --output_dir=runs/imported_r50
  delg-export --ckpt_path=runs/imported_r50 --export_path=exports/imported_r50
  delg-train --init_checkpoint=runs/imported_r50 --logdir=runs/finetuned ...

Reads only the checkpoint's variables (no official code), maps each official model variable
to the `resnet50_official` DelgModel by name, and skips the optimizer state. Exit status 2, with
a one-line message, for a missing checkpoint, another architecture (R101, no autoencoder,
DELF-only) or an existing output.
"""

from __future__ import annotations

from absl import flags, logging

from delg_tf.models.attention_wiring import ATTENTION_WIRINGS, PAPER
from delg_tools import cli

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "checkpoint",
    None,
    "Official logdir (its delf_tf2-ckpt/ is used), a checkpoint directory, or a prefix.",
)
flags.DEFINE_string("output_dir", None, "delg-tf logdir to create.")
flags.DEFINE_boolean("block3_strides", True, "The official run's --block3_strides.")
flags.DEFINE_float("delg_gem_power", 3.0, "The official run's --delg_gem_power.")
flags.DEFINE_float("delg_arcface_margin", 0.1, "The official run's --delg_arcface_margin.")
flags.DEFINE_enum(
    "attention_wiring",
    PAPER,
    list(ATTENTION_WIRINGS),
    "'paper' for official code from 2021-06-09 on (commit 7ff3ebcc), 'pre_2021' before it.",
)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise cli.UsageError(f"unexpected arguments: {argv[1:]}")
    from delg_tf.export.official_import import import_official_checkpoint
    from delg_tf.models.official_checkpoint import ImportOptions, OfficialCheckpointError

    options = ImportOptions(
        block3_strides=FLAGS.block3_strides,
        gem_power=FLAGS.delg_gem_power,
        arcface_margin=FLAGS.delg_arcface_margin,
        attention_wiring=FLAGS.attention_wiring,
    )
    try:
        record = import_official_checkpoint(FLAGS.checkpoint, FLAGS.output_dir, options)
    except (OfficialCheckpointError, FileExistsError) as error:
        raise cli.UsageError(str(error)) from None
    logging.info(
        "Imported %d official model variables from %s into %s (%s).",
        record["official_model_variables"],
        record["source_checkpoint"],
        FLAGS.output_dir,
        record["checkpoint"],
    )


def run() -> None:
    cli.require_positive("delg_gem_power")
    cli.require_non_negative("delg_arcface_margin")
    cli.run(
        main, tool="delg-import-official", module=__name__, required=["checkpoint", "output_dir"]
    )


if __name__ == "__main__":
    run()
