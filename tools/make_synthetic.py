"""Writes the synthetic landmark dataset (GLDv2 layout + a Revisited-Oxford-style test set).

Example:
  delg-make-synthetic --output_dir=/tmp/synthetic --preset=demo --seed=0

Then build TFRecords from it like from GLDv2:
  delg-build-tfrecords --train_csv_path=/tmp/synthetic/train.csv \
    --train_clean_csv_path=/tmp/synthetic/train_clean.csv \
    --train_directory='/tmp/synthetic/train/*/*/*/' ...
"""

from __future__ import annotations

import json
import os
import time

from absl import app, flags, logging

from delg_tf.common.flags_record import serialize_flags, write_flags_record
from delg_tf.demo.synthetic import landmarks as synthetic_landmarks
from delg_tools import cli

FLAGS = flags.FLAGS

flags.DEFINE_string("output_dir", None, "Folder to write the dataset to.")
flags.DEFINE_enum("preset", "tiny", sorted(synthetic_landmarks.PRESETS), "Size preset.")
flags.DEFINE_integer("seed", 0, "Seed; the same seed writes byte-identical files.", lower_bound=0)
flags.DEFINE_integer("num_workers", None, "Worker processes (default: all cores; 1: no pool).")
_OVERRIDES = {
    "num_train_landmarks": "Training landmarks (classes).",
    "images_per_train_landmark": "Images per training landmark.",
    "num_noisy_train_images": "train.csv images left out of train_clean.csv.",
    "num_test_landmarks": "Held-out landmarks that are queried.",
    "queries_per_test_landmark": "Queries per test landmark.",
    "index_images_per_test_landmark": "Index views per test landmark (easy/hard/junk).",
    "num_distractor_landmarks": "Held-out landmarks in the index that are never queried.",
    "images_per_distractor_landmark": "Index views per distractor landmark.",
    "num_distractor_images": "Index images without any landmark.",
    "image_size": "Long side of every image in pixels.",
    "plane_size": "Long side of each landmark plane in pixels (its detail resolution).",
    "num_palettes": "Colour palettes shared by all landmarks (fewer: colour tells less).",
}
for _name, _help in _OVERRIDES.items():
    flags.DEFINE_integer(_name, None, _help + " Default: from --preset.")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    overrides = {name: FLAGS[name].value for name in _OVERRIDES if FLAGS[name].value is not None}
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    # Only what decides the content, so reruns and copies stay byte-identical.
    write_flags_record(FLAGS.output_dir, serialize_flags(FLAGS, ["preset", "seed", *overrides]))
    start = time.perf_counter()
    try:
        info = synthetic_landmarks.generate_dataset(
            FLAGS.output_dir,
            preset=FLAGS.preset,
            seed=FLAGS.seed,
            num_workers=FLAGS.num_workers,
            **overrides,
        )
    except ValueError as e:
        raise app.UsageError(str(e)) from e
    logging.info("Wrote %s in %.1f s: %s", FLAGS.output_dir, time.perf_counter() - start,
                 json.dumps(info["counts"]))  # fmt: skip
    print(json.dumps(info["counts"]))


def run() -> None:
    # Required here, not at import: tests import several binaries into one process, and an
    # import-time requirement would make every other binary's flag parsing fail.
    may_be_zero = (
        "num_noisy_train_images",
        "num_distractor_landmarks",
        "images_per_distractor_landmark",
        "num_distractor_images",
    )
    cli.require_non_negative(*may_be_zero)
    cli.require_positive("num_workers", *(n for n in _OVERRIDES if n not in may_be_zero))
    cli.run(main, tool="delg-make-synthetic", module=__name__, required=["output_dir"])


if __name__ == "__main__":
    run()
