"""delg-calibrate-threshold: choose an export's attention threshold from sample images.

  delg-calibrate-threshold --model_path=/tmp/delg-export --images_dir=sample_photos/

Runs the export at its default scales on up to --max_images images (a seeded random sample) and
writes the threshold at which the median image yields --target_features features into the
export's settings asset (`assets/delg_export_settings.json`).

Exit status: 0 every sample image was read; 3 finished, but some samples were unreadable (FIFOs,
symlinks leaving the folder, corrupt files: listed); 2 usage error (one line); 1 a bug.
"""

from __future__ import annotations

import os
import random

from absl import flags, logging

from delg_tf.export.export_settings import read_settings, settings_path
from delg_tf.extraction.image_inputs import folder_records
from delg_tf.extraction.threshold_calibration import calibrate_export
from delg_tools import cli

FLAGS = flags.FLAGS
TOOL = "delg-calibrate-threshold"
flags.DEFINE_string(
    "model_path",
    None,
    "SavedModel written by delg-export (updated in place), or an official model (with --dry_run).",
)
flags.DEFINE_string("images_dir", None, "Folder of sample images like the ones to extract.")
flags.DEFINE_integer("target_features", 1000, "Wanted features for the median image.")
flags.DEFINE_integer("max_images", 200, "Most sample images used.")
flags.DEFINE_integer("seed", 0, "Seed of the sample.")
flags.DEFINE_bool("dry_run", False, "Print the threshold without writing it.")


def _check_inputs() -> None:
    """The export and the sample folder, checked before minutes of running the model."""
    if not os.path.isdir(FLAGS.images_dir):
        raise cli.UsageError(f"--images_dir={FLAGS.images_dir} is not a directory")
    if not os.path.isfile(settings_path(FLAGS.model_path)):
        raise cli.UsageError(
            f"--model_path={FLAGS.model_path}: no {settings_path(FLAGS.model_path)} (not an "
            "export written by delg-export)"
        )
    try:
        settings = read_settings(FLAGS.model_path)
    except ValueError as error:
        raise cli.UsageError(f"--model_path={FLAGS.model_path}: {error}") from None
    if FLAGS.target_features > settings.max_feature_num:
        # No threshold can give more features than extraction keeps (it wrote 0 before).
        raise cli.UsageError(
            f"--target_features={FLAGS.target_features} is above the export's max_feature_num "
            f"{settings.max_feature_num}; choose at most {settings.max_feature_num}"
        )


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise cli.UsageError(f"unexpected arguments: {argv[1:]}")
    _check_inputs()
    try:
        records = folder_records(FLAGS.images_dir)
    except ValueError as error:
        raise cli.UsageError(str(error)) from None
    if not records:
        raise cli.UsageError(f"--images_dir={FLAGS.images_dir}: no images found")
    if len(records) > FLAGS.max_images:
        records = sorted(random.Random(FLAGS.seed).sample(records, FLAGS.max_images),
                         key=lambda r: r.image_id)  # fmt: skip
    try:
        result = calibrate_export(
            FLAGS.model_path, records, target=FLAGS.target_features, write=not FLAGS.dry_run
        )
    except ValueError as error:  # not a DELG SavedModel, an official one without --dry_run, or
        # none of the samples could be read
        raise cli.UsageError(str(error)) from None
    print(
        f"attention_threshold={result.threshold:.6g} "
        f"median_features={result.median_count:g} on {len(result.counts)} images "
        f"(min {result.counts.min()}, max {result.counts.max()}; {len(result.failures)} unreadable)"
        + ("" if FLAGS.dry_run else f"; written to {FLAGS.model_path}")
    )
    for image_id, reason in result.failures:
        logging.warning("unreadable sample image %s: %s", image_id, reason)
    return cli.EXIT_PARTIAL if result.failures else cli.EXIT_OK


def run() -> None:
    cli.require_positive("target_features", "max_images")
    cli.require_non_negative("seed")
    cli.run(main, tool=TOOL, module=__name__, required=["model_path", "images_dir"])


if __name__ == "__main__":
    run()
