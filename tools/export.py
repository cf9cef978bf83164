"""delg-export: training checkpoint -> SavedModel with the official DELG signature.

  delg-export --ckpt_path=/tmp/delg-logdir --export_path=/tmp/delg-export

`--ckpt_path` is a checkpoint prefix or a training logdir (its latest checkpoint is used). The
export records its settings (scales, descriptor sizes, receptive field, threshold) in
`assets/delg_export_settings.json`; run delg-calibrate-threshold on it before extracting.
"""

from __future__ import annotations

from absl import app, flags, logging

from delg_tf.common.flags_record import write_flags_record
from delg_tf.export.export_settings import (
    DEFAULT_GLOBAL_SCALES_IND,
    DEFAULT_IMAGE_SCALES,
    DEFAULT_MAX_FEATURE_NUM,
    DEFAULT_MAX_IMAGE_SIZE,
)
from delg_tf.export.exporter import export_from_checkpoint

FLAGS = flags.FLAGS
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


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    try:
        scales = [float(s) for s in FLAGS.image_scales]
        global_ind = [int(i) for i in FLAGS.global_scales_ind]
    except ValueError as e:
        raise app.UsageError(f"--image_scales/--global_scales_ind: {e}") from e
    settings = export_from_checkpoint(
        FLAGS.ckpt_path,
        FLAGS.export_path,
        compute_dtype=FLAGS.compute_dtype,
        image_scales=scales,
        global_scales_ind=global_ind,
        max_feature_num=FLAGS.max_feature_num,
        max_image_size=FLAGS.max_image_size,
        attention_threshold=FLAGS.attention_threshold,
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


def run() -> None:
    # Required here, not at import: tests import several binaries into one process, and an
    # import-time requirement would make every other binary's flag parsing fail.
    flags.mark_flags_as_required(["ckpt_path", "export_path"])
    app.run(main)


if __name__ == "__main__":
    run()
