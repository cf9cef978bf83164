r"""delg-build-tfrecords: converts Google Landmarks v2 or a class-per-folder dataset to TFRecords.

GLDv2 mode (the official build_image_dataset.py flags):
  delg-build-tfrecords \
    --train_csv_path=gldv2/train.csv --train_clean_csv_path=gldv2/train_clean.csv \
    --train_directory='gldv2/train/*/*/*/' --test_csv_path=gldv2/test.csv \
    --test_directory='gldv2/test/*/*/*/' --output_directory=tfrecords \
    --num_shards=128 --generate_train_validation_splits --validation_split_size=0.2 --seed=0

Folder mode (one sub-folder per class):
  delg-build-tfrecords --image_root=my_photos --output_directory=tfrecords \
    --generate_train_validation_splits --num_shards=16

Outputs in --output_directory: `train-%05d-of-%05d`, `validation-...`, `test-...`,
`relabeling.csv` (`new_label,old_label`; clean-CSV and folder modes), `bad_inputs.csv`
(`id,path,reason`) and `manifest.json` (flags, per-shard record counts and sha256).
A killed run started again with the same flags reuses the completed shards.

Exit status: 0 every input converted; 3 finished, but some inputs were skipped (see
bad_inputs.csv); 2 usage error (flags, CSV missing a column, output directory of another run);
1 unexpected failure.
"""

from __future__ import annotations

import os
import sys

from absl import app, flags, logging

from delg_tf.conversion import gldv2_csv, image_folder, image_paths
from delg_tf.conversion import image_sanitizer as sanitizer
from delg_tf.conversion import plan as conversion_plan
from delg_tf.conversion import tfrecord_conversion as conversion
from delg_tf.data.relabeling import (
    RELABELING_FILE,
    contiguous_relabeling,
    relabeling_csv_text,
)
from delg_tools import cli  # noqa: E402

EXIT_OK = cli.EXIT_OK
EXIT_USAGE = cli.EXIT_USAGE
EXIT_SKIPPED_INPUTS = cli.EXIT_PARTIAL

_DEF_STRING = flags.DEFINE_string
_DEF_STRING("train_csv_path", None, "GLDv2 train.csv (id, landmark_id). Unused with a clean CSV.")
_DEF_STRING(
    "train_clean_csv_path",
    None,
    "GLDv2 train_clean.csv (landmark_id, images). Labels are relabelled 0..K-1 in sorted order "
    "of landmark_id and the mapping is written to relabeling.csv.",
)
_DEF_STRING(
    "train_directory",
    None,
    "Train images: <dir>/a/b/c/<id>.jpg (GLDv2 layout) or <dir>/<id>.jpg; the official glob "
    "form '<dir>/*/*/*/' is accepted.",
)
_DEF_STRING("test_csv_path", None, "GLDv2 test.csv (id). Requires --test_directory.")
_DEF_STRING("test_directory", None, "Test images, same layout rules as --train_directory.")
_DEF_STRING(
    "image_root",
    None,
    "Folder mode: one sub-folder per class (class = folder name, relabelled in sorted order). "
    "Cannot be combined with the GLDv2 flags.",
)
_DEF_STRING("output_directory", None, "Where shards, manifest.json and CSVs are written.")
flags.DEFINE_integer("num_shards", 128, "Number of shards per split.")
flags.DEFINE_boolean(
    "generate_train_validation_splits", False, "Split train per class into train and validation."
)
flags.DEFINE_float("validation_split_size", 0.2, "Fraction of each class sent to validation.")
flags.DEFINE_integer("seed", 0, "Seed of the split and of the global shuffle.")
flags.DEFINE_boolean(
    "singletons_to_train",
    False,
    "Put one-image classes in train. Default False, as the official tool: they go to "
    "validation only (their count is in the summary).",
)
flags.DEFINE_integer(
    "num_workers", None, "Image decoding processes (default: available cores; 0 = in process)."
)
flags.DEFINE_integer(
    "min_image_size",
    sanitizer.DEFAULT_MIN_IMAGE_SIZE,
    "Images whose height or width is smaller are skipped (0 keeps all).",
)
flags.DEFINE_integer(
    "jpeg_quality", sanitizer.DEFAULT_JPEG_QUALITY, "Quality of re-encoded (non RGB JPEG) images."
)
flags.DEFINE_boolean(
    "overwrite", False, "Delete this tool's outputs in --output_directory and start over."
)
flags.DEFINE_boolean("progress", True, "Show a progress bar on stderr.")

FLAGS = flags.FLAGS


class _Fatal(Exception):
    """An error reported with exit status 2, without a traceback."""


def _abspath(path: str | None) -> str | None:
    return os.path.abspath(path) if path else None


def _validate_flags() -> str:
    """Returns "gldv2" or "folder"; raises app.UsageError on a bad combination."""
    gldv2_flags = [
        name
        for name in (
            "train_csv_path",
            "train_clean_csv_path",
            "train_directory",
            "test_csv_path",
            "test_directory",
        )
        if FLAGS[name].value
    ]
    usage = lambda message: app.UsageError(message, exitcode=EXIT_USAGE)
    if not FLAGS.output_directory:
        raise usage("--output_directory is required")
    if FLAGS.image_root and gldv2_flags:
        raise usage(
            f"--image_root (folder mode) cannot be combined with GLDv2 flags: --{gldv2_flags[0]}"
        )
    if not FLAGS.image_root and not gldv2_flags:
        raise usage(
            "give either --image_root (folder mode) or --train_csv_path/--train_clean_csv_path "
            "with --train_directory (GLDv2 mode)"
        )
    if FLAGS.num_shards < 1:
        raise usage(f"--num_shards must be >= 1, got {FLAGS.num_shards}")
    if FLAGS.num_workers is not None and FLAGS.num_workers < 0:
        raise usage(f"--num_workers must be >= 0, got {FLAGS.num_workers}")
    if FLAGS.min_image_size < 0:
        raise usage(f"--min_image_size must be >= 0, got {FLAGS.min_image_size}")
    if not 1 <= FLAGS.jpeg_quality <= 100:
        raise usage(f"--jpeg_quality must be in [1, 100], got {FLAGS.jpeg_quality}")
    if FLAGS.generate_train_validation_splits and not 0 < FLAGS.validation_split_size < 1:
        raise usage(
            f"--validation_split_size must be inside (0, 1), got {FLAGS.validation_split_size}"
        )
    if FLAGS.image_root:
        return "folder"
    has_train_csv = bool(FLAGS.train_csv_path or FLAGS.train_clean_csv_path)
    if has_train_csv != bool(FLAGS.train_directory):
        raise usage(
            "--train_directory and one of --train_csv_path/--train_clean_csv_path go together"
        )
    if bool(FLAGS.test_csv_path) != bool(FLAGS.test_directory):
        raise usage("--test_csv_path and --test_directory go together")
    if FLAGS.generate_train_validation_splits and not has_train_csv:
        raise usage("--generate_train_validation_splits needs a train CSV")
    return "gldv2"


def _plan_gldv2():
    """Reads the CSVs (all of them, before any image work) and plans the splits."""
    splits, bad, summary, relabeling = {}, [], {}, None
    train_entries = test_entries = None
    if FLAGS.train_clean_csv_path:
        if FLAGS.train_csv_path:
            logging.info("--train_clean_csv_path given: --train_csv_path is not read")
        train_entries = gldv2_csv.read_train_clean_csv(FLAGS.train_clean_csv_path)
    elif FLAGS.train_csv_path:
        train_entries = gldv2_csv.read_train_csv(FLAGS.train_csv_path)
    if FLAGS.test_csv_path:
        test_entries = gldv2_csv.read_test_csv(FLAGS.test_csv_path)
    if train_entries is not None:
        bad.extend(train_entries.bad_inputs)
        labels = train_entries.labels
        if FLAGS.train_clean_csv_path:
            # Relabel from every valid CSV row (as the official tool), so the class count does
            # not depend on which files happen to be present.
            relabeling = contiguous_relabeling(labels)
            labels = [relabeling[label] for label in labels]
        root = os.path.abspath(image_paths.image_root_from_flag(FLAGS.train_directory))
        found = conversion_plan.locate_gldv2_images(train_entries.ids, labels, root)
        bad.extend(found.bad_inputs)
        splits, summary = conversion_plan.plan_labelled_splits(
            found.ids,
            found.paths,
            found.labels,
            FLAGS.generate_train_validation_splits,
            FLAGS.validation_split_size,
            FLAGS.seed,
            FLAGS.singletons_to_train,
        )
        summary["classes"] = len(relabeling) if relabeling is not None else len(set(labels))
    if test_entries is not None:
        bad.extend(test_entries.bad_inputs)
        root = os.path.abspath(image_paths.image_root_from_flag(FLAGS.test_directory))
        found = conversion_plan.locate_gldv2_images(test_entries.ids, None, root)
        bad.extend(found.bad_inputs)
        splits["test"] = conversion_plan.plan_test_split(found.ids, found.paths)
    return splits, bad, summary, relabeling


def _plan_folder():
    # Absolute paths: the plan (and so a resume) must not depend on the working directory.
    listing = image_folder.list_image_folder(os.path.abspath(FLAGS.image_root))
    if not listing.class_names:
        raise _Fatal(f"--image_root {FLAGS.image_root} has no class sub-folders")
    splits, summary = conversion_plan.plan_labelled_splits(
        listing.ids,
        listing.paths,
        listing.labels,
        FLAGS.generate_train_validation_splits,
        FLAGS.validation_split_size,
        FLAGS.seed,
        FLAGS.singletons_to_train,
    )
    summary["classes"] = len(listing.class_names)
    summary["ignored_files"] = listing.ignored_files
    relabeling = {name: index for index, name in enumerate(listing.class_names)}
    return splits, list(listing.bad_inputs), summary, relabeling


def _identity(mode: str) -> dict:
    identity = {"mode": mode}
    for name in (
        "train_csv_path",
        "train_clean_csv_path",
        "train_directory",
        "test_csv_path",
        "test_directory",
        "image_root",
    ):
        identity[name] = _abspath(FLAGS[name].value)
    if FLAGS.train_clean_csv_path:
        identity["train_csv_path"] = None  # Not read in clean mode.
    identity.update(
        generate_train_validation_splits=FLAGS.generate_train_validation_splits,
        validation_split_size=FLAGS.validation_split_size,
        seed=FLAGS.seed,
        singletons_to_train=FLAGS.singletons_to_train,
    )
    return identity


def _print_summary(summary: dict, output_directory: str) -> None:
    records = ", ".join(f"{k}={v}" for k, v in summary["records"].items())
    conversions = ", ".join(f"{k}: {v}" for k, v in summary["conversions"].items())
    reasons = ", ".join(f"{k}: {v}" for k, v in summary["bad_inputs_by_reason"].items())
    lines = [f"TFRecord conversion summary ({output_directory})", f"  records: {records}"]
    if "classes" in summary:
        lines.append(
            f"  classes: {summary['classes']} labels, {summary['classes_with_images']} with "
            f"images, {summary['classes_only_in_validation']} only in validation "
            "(one-image classes; --singletons_to_train changes this)"
        )
    if summary.get("ignored_files"):
        lines.append(
            f"  ignored files: {summary['ignored_files']} (hidden, or not an image extension)"
        )
    lines += [
        f"  converted to RGB JPEG: {summary['converted_to_rgb_jpeg']}"
        + (f" ({conversions})" if conversions else ""),
        f"  bad inputs skipped: {summary['bad_inputs']}"
        + (f" ({reasons}); listed in bad_inputs.csv" if reasons else ""),
        f"  shards: {summary['shards_written']} written, {summary['shards_reused']} reused",
        f"  this run: {summary['images_processed_this_run']} images in "
        f"{summary['seconds_this_run']} s ({summary['images_per_second_this_run']} images/s)",
    ]
    print("\n".join(lines), flush=True)


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}", exitcode=EXIT_USAGE)
    mode = _validate_flags()
    try:
        splits, bad, plan_summary, relabeling = _plan_gldv2() if mode == "gldv2" else _plan_folder()
        num_workers = FLAGS.num_workers
        if num_workers is None:
            num_workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
        options = conversion.ConversionOptions(
            num_shards=FLAGS.num_shards,
            min_image_size=FLAGS.min_image_size,
            jpeg_quality=FLAGS.jpeg_quality,
            num_workers=num_workers,
            overwrite=FLAGS.overwrite,
            show_progress=FLAGS.progress,
        )
        side_files = {RELABELING_FILE: relabeling_csv_text(relabeling)} if relabeling else {}
        summary, all_bad = conversion.convert_to_tfrecords(
            splits,
            FLAGS.output_directory,
            options,
            identity=_identity(mode),
            planning_bad_inputs=bad,
            side_files=side_files,
            plan_summary=plan_summary,
        )
    except (
        _Fatal,
        gldv2_csv.CsvFormatError,
        NotADirectoryError,
        conversion.ResumeMismatchError,
        conversion.OutputDirectoryError,
    ) as error:
        print(f"delg-build-tfrecords: error: {error}", file=sys.stderr, flush=True)
        return EXIT_USAGE
    _print_summary(summary, FLAGS.output_directory)
    return EXIT_SKIPPED_INPUTS if all_bad else EXIT_OK


def run() -> None:
    """Console-script entry point."""
    # NaN passed `0 < x < 1` unnoticed without --generate_train_validation_splits.
    cli.require_range("validation_split_size", 0.0, 1.0)
    cli.require_positive("num_shards")
    cli.require_non_negative("seed", "num_workers", "min_image_size")  # 0: in process / any size
    cli.require_range("jpeg_quality", 1, 100)  # Pillow's scale
    cli.run(main, tool="delg-build-tfrecords", module=__name__)


if __name__ == "__main__":
    run()
