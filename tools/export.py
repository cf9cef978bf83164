"""delg-export: training checkpoint -> SavedModel with the official DELG signature.

  delg-export --ckpt_path=/tmp/delg-logdir --export_path=/tmp/delg-export

`--ckpt_path` is a checkpoint prefix or a training logdir (its latest checkpoint is used). The
export records its settings (scales, descriptor sizes, receptive field, threshold) in
`assets/delg_export_settings.json`; run delg-calibrate-threshold on it before extracting.
--gem_plus, --regional_gem and --scale_gem switch on SuperGlobal's pooling of the global
descriptor (recorded in the settings as `global_pooling`; off by default).

Exit status: 0 exported; 2 usage error (one line: a missing checkpoint, an existing
--export_path, a bad value); 1 a bug (traceback).
"""

from __future__ import annotations

import logging as std_logging
import os

from absl import flags, logging

from delg_tf.common.flags_record import write_flags_record
from delg_tf.export.export_settings import (
    DEFAULT_GLOBAL_SCALES_IND,
    DEFAULT_IMAGE_SCALES,
    DEFAULT_MAX_FEATURE_NUM,
    DEFAULT_MAX_IMAGE_SIZE,
)
from delg_tf.export.exporter import export_from_checkpoint
from delg_tf.export.global_pooling import GEM_PLUS_POWER, GlobalPooling
from delg_tools import cli

FLAGS = flags.FLAGS
TOOL = "delg-export"
flags.DEFINE_string("ckpt_path", None, "Checkpoint prefix or training logdir.")
flags.DEFINE_string("export_path", None, "SavedModel directory to create (must not exist).")
flags.DEFINE_enum("compute_dtype", "float32", ["float32", "bfloat16"], "Network compute dtype.")
flags.DEFINE_list(
    "image_scales", [str(s) for s in DEFAULT_IMAGE_SCALES], "Default pyramid scales (local)."
)
flags.DEFINE_list(
    "global_scales_ind",
    [str(i) for i in DEFAULT_GLOBAL_SCALES_IND],
    "Indices into --image_scales used for the global descriptor.",
)
flags.DEFINE_integer("max_feature_num", DEFAULT_MAX_FEATURE_NUM, "Most local features per image.")
flags.DEFINE_integer("max_image_size", DEFAULT_MAX_IMAGE_SIZE, "Longest image side at extraction.")
flags.DEFINE_float(
    "attention_threshold", None, "Attention threshold, if known (else calibrate after export)."
)
# SuperGlobal pooling of the global descriptor (off by default: the official DELG descriptor).
flags.DEFINE_boolean("gem_plus", False, "GeM+: pool conv5 with --gem_plus_power (SuperGlobal).")
flags.DEFINE_float("gem_plus_power", GEM_PLUS_POWER, "GeM+ power p.", lower_bound=1e-3)
flags.DEFINE_boolean("regional_gem", False, "Regional GeM (p 2.5, 5x5) before pooling.")
flags.DEFINE_boolean("scale_gem", False, "Scale-GeM: max over L2-normalised scales, not sum.")


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise cli.UsageError(f"unexpected arguments: {argv[1:]}")
    # Before minutes of loading: never overwrite (as the official exporter).
    if os.path.exists(FLAGS.export_path):
        raise cli.UsageError(f"--export_path={FLAGS.export_path} already exists; give a new path")
    scales = [float(s) for s in FLAGS.image_scales]
    global_ind = [int(i) for i in FLAGS.global_scales_ind]
    if max(global_ind) >= len(scales):
        raise cli.UsageError(
            f"--global_scales_ind={FLAGS.global_scales_ind}: index {max(global_ind)} is out of "
            f"range for the {len(scales)} --image_scales"
        )
    # TF's saver logs multi-kilobyte INFO lines (assets, fingerprints); the tool's own line is
    # the one that matters.
    std_logging.getLogger("tensorflow").setLevel(std_logging.WARNING)
    settings = export_from_checkpoint(
        FLAGS.ckpt_path,
        FLAGS.export_path,
        compute_dtype=FLAGS.compute_dtype,
        image_scales=scales,
        global_scales_ind=global_ind,
        max_feature_num=FLAGS.max_feature_num,
        max_image_size=FLAGS.max_image_size,
        attention_threshold=FLAGS.attention_threshold,
        global_pooling=GlobalPooling(
            gem_power=FLAGS.gem_plus_power if FLAGS.gem_plus else None,
            regional_gem=FLAGS.regional_gem,
            scale_aggregation="max" if FLAGS.scale_gem else "sum",
        ),
    )
    write_flags_record(FLAGS.export_path, FLAGS.flags_into_string())
    logging.info(
        "Exported %s (backbone %s, receptive field %s) to %s; attention threshold %s",
        settings.model_config.get("checkpoint"),
        settings.backbone,
        settings.receptive_field,
        FLAGS.export_path,
        settings.attention_threshold
        if settings.attention_threshold is not None
        else "not set: run delg-calibrate-threshold",
    )
    return cli.EXIT_OK


def run() -> None:
    cli.require_positive("image_scales", "max_feature_num", "max_image_size")
    cli.require_indices("global_scales_ind")
    cli.require_non_negative("attention_threshold")
    cli.require_positive("gem_plus_power")  # lower_bound lets NaN and inf through
    cli.run(main, tool=TOOL, module=__name__, required=["ckpt_path", "export_path"])


if __name__ == "__main__":
    run()
