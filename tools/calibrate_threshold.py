"""delg-calibrate-threshold: choose an export's attention threshold from sample images.

  delg-calibrate-threshold --model_path=/tmp/delg-export --images_dir=sample_photos/

Runs the export at its default scales on up to --max_images images (a seeded random sample) and
writes the threshold at which the median image yields --target_features features into the
export's settings asset (`assets/delg_export_settings.json`).
"""

from __future__ import annotations

import random

from absl import app, flags, logging

from delg_tf.extraction.image_inputs import folder_records
from delg_tf.extraction.threshold_calibration import calibrate_export

FLAGS = flags.FLAGS
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


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    records = folder_records(FLAGS.images_dir)
    if not records:
        raise app.UsageError(f"--images_dir {FLAGS.images_dir}: no images found")
    if len(records) > FLAGS.max_images:
        records = sorted(random.Random(FLAGS.seed).sample(records, FLAGS.max_images),
                         key=lambda r: r.image_id)  # fmt: skip
    try:
        result = calibrate_export(
            FLAGS.model_path, records, target=FLAGS.target_features, write=not FLAGS.dry_run
        )
    except ValueError as error:  # not a DELG SavedModel, or an official one without --dry_run
        raise app.UsageError(f"--model_path: {error}") from None
    print(
        f"attention_threshold={result.threshold:.6g} "
        f"median_features={result.median_count:g} on {len(result.counts)} images "
        f"(min {result.counts.min()}, max {result.counts.max()}; {len(result.failures)} unreadable)"
        + ("" if FLAGS.dry_run else f"; written to {FLAGS.model_path}")
    )
    for image_id, reason in result.failures:
        logging.warning("unreadable sample image %s: %s", image_id, reason)


def run() -> None:
    # Required here, not at import: tests import several binaries into one process, and an
    # import-time requirement would make every other binary's flag parsing fail.
    flags.mark_flags_as_required(["model_path", "images_dir"])
    app.run(main)


if __name__ == "__main__":
    run()
