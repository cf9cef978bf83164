"""delg-extract: DELG features of many images into a feature store, resumable.

  delg-extract --model_path=/tmp/delg-export --images_dir=photos/ --output_features_dir=feats/
  delg-extract --model_path=... --image_list=list.txt --images_dir=root/ --output_features_dir=...
  delg-extract --model_path=... --dataset_file_path=gnd_roxford5k.pkl --images_dir=oxford/jpg \
      --image_set=query --output_features_dir=roxf_query/

Settings (scales, threshold, max features, max image size) come from the export; the flags
below override them. A SavedModel with the same `serving_default` signature but not written by
delg-export (no settings asset) takes the official DELG extraction defaults and needs
--attention_threshold. Rerunning on the same --output_features_dir resumes; unreadable
images (and FIFOs, devices, symlinks leaving the image folder) are skipped and listed in the
store (and in the log).

Exit status: 0 every image extracted; 3 finished, but some images failed (listed); 2 usage error
(one line naming the flag or file); 1 a bug (traceback). See README "Crash safety and bad input".
"""

from __future__ import annotations

import os
import sys

import tensorflow as tf
from absl import flags, logging

from delg_tf.export.export_settings import SETTINGS_FILENAME, read_settings, settings_path
from delg_tf.extraction.extractor import ExtractionOptions, SavedModelExtractor, extract_to_store
from delg_tf.extraction.feature_store import FeatureStore
from delg_tf.extraction.image_inputs import (
    MIN_IMAGE_SIDE,
    folder_records,
    list_records,
    revisited_records,
)
from delg_tools import cli

FLAGS = flags.FLAGS
TOOL = "delg-extract"
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
    """The images to extract; bad lists and folders are usage errors naming the flag."""
    try:
        if FLAGS.dataset_file_path:
            if not FLAGS.images_dir:
                raise cli.UsageError("--dataset_file_path needs --images_dir")
            return revisited_records(FLAGS.dataset_file_path, FLAGS.images_dir, FLAGS.image_set)
        if FLAGS.image_list:
            if not os.path.isfile(FLAGS.image_list):
                raise cli.UsageError(f"--image_list={FLAGS.image_list}: no such file")
            return list_records(FLAGS.image_list, FLAGS.images_dir)
        if FLAGS.images_dir:
            return folder_records(FLAGS.images_dir)
    except ValueError as error:  # duplicate ids, a line leaving the folder, a bad gnd file
        raise cli.UsageError(str(error)) from None
    raise cli.UsageError("give --images_dir, --image_list or --dataset_file_path")


def _options(model_path: str) -> ExtractionOptions:
    """The export's settings asset with the flags' overrides; the flags alone without one."""
    if not any(
        tf.io.gfile.exists(os.path.join(model_path, name))
        for name in ("saved_model.pb", "saved_model.pbtxt")
    ):
        raise cli.UsageError(f"--model_path={model_path} is not a SavedModel directory")
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
        raise cli.UsageError(f"{model_path}: {error}") from None
    logging.info("Extraction settings: %s", options)
    return options


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise cli.UsageError(f"unexpected arguments: {argv[1:]}")
    if os.path.exists(FLAGS.output_features_dir) and not os.path.isdir(FLAGS.output_features_dir):
        raise cli.UsageError(f"--output_features_dir={FLAGS.output_features_dir} is a file")
    records = _records()
    options = _options(FLAGS.model_path)
    extractor = SavedModelExtractor(FLAGS.model_path, options)
    os.makedirs(FLAGS.output_features_dir, exist_ok=True)
    with open(os.path.join(FLAGS.output_features_dir, "extract_flags.txt"), "w") as f:
        f.write(FLAGS.flags_into_string())
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
    # Finished with failures is not success (issue 12: all images failing exited 0), also on a
    # re-run that finds them recorded by an earlier run.
    wanted = {r.image_id for r in records}
    failed = [i for i, _ in FeatureStore(FLAGS.output_features_dir).failures if i in wanted]
    if failed:
        print(
            f"{TOOL}: {len(failed)} of {len(wanted)} images failed (e.g. {failed[0]}); they are "
            f"listed in {FLAGS.output_features_dir} and in the log above",
            file=sys.stderr,
        )
        return cli.EXIT_PARTIAL
    return cli.EXIT_OK


def _check_flags() -> None:
    cli.require_positive("shard_size", "num_decode_threads", "max_feature_num", "image_scales")
    cli.require_non_negative("attention_threshold")
    cli.require_indices("global_scales_ind")
    cli.require_range("max_image_size", MIN_IMAGE_SIDE, 1 << 16)


def run() -> None:
    _check_flags()
    cli.run(main, tool=TOOL, module=__name__, required=["model_path", "output_features_dir"])


if __name__ == "__main__":
    run()
