"""delg-extract: DELG features of many images into a feature store, resumable.

  delg-extract --model_path=/tmp/delg-export --images_dir=photos/ --output_features_dir=feats/
  delg-extract --model_path=... --image_list=list.txt --images_dir=root/ --output_features_dir=...
  delg-extract --model_path=... --dataset_file_path=gnd_roxford5k.pkl --images_dir=oxford/jpg \
      --image_set=query --output_features_dir=roxf_query/

Settings (scales, threshold, max features, max image size) come from the export; the flags
below override them. A SavedModel with the same `serving_default` signature but not written by
delg-export (no settings asset) takes the official DELG extraction defaults and needs
--attention_threshold. Rerunning on the same --output_features_dir resumes; unreadable
images are skipped and listed in the store (and in the log).
"""

from __future__ import annotations

import os

import tensorflow as tf
from absl import app, flags, logging

from delg_tf.common.flags_record import write_flags_record
from delg_tf.export.export_settings import SETTINGS_FILENAME, read_settings, settings_path
from delg_tf.extraction.extractor import ExtractionOptions, SavedModelExtractor, extract_to_store
from delg_tf.extraction.image_inputs import folder_records, list_records, revisited_records

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "model_path",
    None,
    "SavedModel written by delg-export, or another with its serving_default signature (then "
    "--attention_threshold is required).",
)
flags.DEFINE_string("output_features_dir", None, "Feature store directory (resumed if present).")
flags.DEFINE_string("images_dir", None, "Image folder (alone: every image under it).")
flags.DEFINE_string("image_list", None, "Text file of image paths relative to --images_dir.")
flags.DEFINE_string("dataset_file_path", None, "Revisited Oxford/Paris gnd file (.pkl/.mat/.json).")
flags.DEFINE_enum("image_set", "query", ["query", "index"], "With --dataset_file_path.")
flags.DEFINE_integer("max_image_size", None, "Longest image side (default: export, 1024).")
flags.DEFINE_float("attention_threshold", None, "Override the export's attention threshold.")
flags.DEFINE_integer("max_feature_num", None, "Override the most local features per image.")
flags.DEFINE_list("image_scales", None, "Override the pyramid scales.")
flags.DEFINE_list("global_scales_ind", None, "Override the global scale indices.")
flags.DEFINE_integer("shard_size", 1000, "Images per store shard (the unit of resume).")
flags.DEFINE_integer("num_decode_threads", 2, "Parallel image decoders.")


def _records():
    if FLAGS.dataset_file_path:
        if not FLAGS.images_dir:
            raise app.UsageError("--dataset_file_path needs --images_dir")
        return revisited_records(FLAGS.dataset_file_path, FLAGS.images_dir, FLAGS.image_set)
    if FLAGS.image_list:
        return list_records(FLAGS.image_list, FLAGS.images_dir)
    if FLAGS.images_dir:
        return folder_records(FLAGS.images_dir)
    raise app.UsageError("give --images_dir, --image_list or --dataset_file_path")


def _options(model_path: str) -> ExtractionOptions:
    """The export's settings asset with the flags' overrides; the flags alone without one."""
    if not any(
        tf.io.gfile.exists(os.path.join(model_path, name))
        for name in ("saved_model.pb", "saved_model.pbtxt")
    ):
        raise app.UsageError(f"--model_path={model_path} is not a SavedModel directory")
    settings = None
    if tf.io.gfile.exists(settings_path(model_path)):
        settings = read_settings(model_path)
    else:
        logging.warning(
            "%s has no assets/%s (not written by delg-export): using the flags and the official "
            "DELG extraction defaults.",
            model_path,
            SETTINGS_FILENAME,
        )
    try:
        options = ExtractionOptions.from_settings(
            settings,
            attention_threshold=FLAGS.attention_threshold,
            max_feature_num=FLAGS.max_feature_num,
            max_image_size=FLAGS.max_image_size,
            image_scales=[float(s) for s in FLAGS.image_scales] if FLAGS.image_scales else None,
            global_scales_ind=[int(i) for i in FLAGS.global_scales_ind]
            if FLAGS.global_scales_ind
            else None,
        )
    except ValueError as error:
        raise app.UsageError(f"{model_path}: {error}") from None
    logging.info("Extraction settings: %s", options)
    return options


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    records = _records()
    options = _options(FLAGS.model_path)
    extractor = SavedModelExtractor(FLAGS.model_path, options)
    os.makedirs(FLAGS.output_features_dir, exist_ok=True)
    write_flags_record(FLAGS.output_features_dir, FLAGS.flags_into_string())
    summary = extract_to_store(
        records,
        extractor,
        FLAGS.output_features_dir,
        global_dim=extractor.global_dim,
        local_dim=extractor.local_dim,
        max_image_size=options.max_image_size,
        shard_size=FLAGS.shard_size,
        num_parallel_calls=FLAGS.num_decode_threads,
    )
    logging.info(
        "%d images extracted (%.2f images/s), %d already done, %d failed -> %s",
        summary.extracted,
        summary.images_per_second,
        summary.skipped_done,
        len(summary.failures),
        FLAGS.output_features_dir,
    )
    for image_id, reason in summary.failures:
        logging.warning("failed: %s: %s", image_id, reason)


def run() -> None:
    # Required here, not at import: tests import several binaries into one process, and an
    # import-time requirement would make every other binary's flag parsing fail.
    flags.mark_flags_as_required(["model_path", "output_features_dir"])
    app.run(main)


if __name__ == "__main__":
    run()
