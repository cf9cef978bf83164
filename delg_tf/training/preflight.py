"""Checks that run before training and fail with a message naming the flag and the value.

A bad flag should cost seconds, not the minutes of building a model and tracing a step:
- a file pattern that matches nothing;
- a class count that disagrees with the dataset's `relabeling.csv`, or labels outside it in a
  sample of the training records (the step guards every label as well);
- an image size the backbone cannot take.
"""

from __future__ import annotations

import csv
import os

import tensorflow as tf

from delg_tf.data import example_schema, reader

RELABELING_FILE = "relabeling.csv"

# Class counts of the official `--dataset_version` values (delg_reference.md §2.1).
DATASET_NUM_CLASSES = {"gld_v1": 14951, "gld_v2": 203094, "gld_v2_clean": 81313}


class FlagError(ValueError):
    """A flag value that cannot work; the message names the flag."""


def match_files(flag_name: str, pattern: str) -> list[str]:
    """The sorted files `pattern` matches (comma-separated patterns allowed).

    Raises:
      FlagError: if the pattern is empty or matches no file.
    """
    if not pattern:
        raise FlagError(f"--{flag_name} is required.")
    try:
        return reader.list_files([part.strip() for part in pattern.split(",")])
    except ValueError:
        raise FlagError(f"--{flag_name}={pattern} matches no file.") from None


def read_relabeling(path: str) -> int:
    """Number of classes listed in a `relabeling.csv` (`new_label,old_label`).

    The new labels must be exactly 0..N-1, as `delg-build-tfrecords` writes them.

    Raises:
      FlagError: on a malformed file, naming the file and the line.
    """
    with tf.io.gfile.GFile(path, "r") as f:
        rows = list(csv.reader(f))
    if not rows or [c.strip() for c in rows[0]] != ["new_label", "old_label"]:
        raise FlagError(f"{path}: expected the header 'new_label,old_label', got {rows[:1]}.")
    labels = []
    for line_number, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        try:
            labels.append(int(row[0]))
        except (ValueError, IndexError) as error:
            raise FlagError(f"{path}:{line_number}: bad new_label {row!r}.") from error
    if sorted(labels) != list(range(len(labels))):
        raise FlagError(f"{path}: new_label values are not exactly 0..{len(labels) - 1}.")
    return len(labels)


def relabeling_path(train_file_pattern: str) -> str:
    """Where `delg-build-tfrecords` puts relabeling.csv: next to the training shards."""
    first = train_file_pattern.split(",")[0].strip()
    return os.path.join(os.path.dirname(first), RELABELING_FILE)


def resolve_num_classes(
    num_classes: int | None, train_file_pattern: str, dataset_version: str | None = None
) -> int:
    """The class count: `--num_classes`, checked against relabeling.csv when one exists.

    Order: the flag if given (and it must agree with relabeling.csv if present); else
    relabeling.csv next to the training files; else the official `--dataset_version` count.

    Raises:
      FlagError: on disagreement, or when nothing gives a count.
    """
    path = relabeling_path(train_file_pattern)
    from_file = read_relabeling(path) if tf.io.gfile.exists(path) else None
    if num_classes is not None:
        if num_classes <= 0:
            raise FlagError(f"--num_classes must be positive, got {num_classes}.")
        if from_file is not None and from_file != num_classes:
            raise FlagError(f"--num_classes={num_classes} but {path} lists {from_file} classes.")
        return num_classes
    if from_file is not None:
        return from_file
    if dataset_version:
        if dataset_version not in DATASET_NUM_CLASSES:
            raise FlagError(
                f"--dataset_version={dataset_version} is not one of {sorted(DATASET_NUM_CLASSES)}."
            )
        return DATASET_NUM_CLASSES[dataset_version]
    raise FlagError(
        f"--num_classes is not set and there is no {path}; pass --num_classes or --dataset_version."
    )


def check_labels(files: list[str], num_classes: int, max_records: int = 2000) -> int:
    """Reads the labels of up to `max_records` records and checks they lie in [0, num_classes).

    Only the label feature is parsed (no JPEG decoding), so this takes well under a second.

    Returns:
      The number of records checked.

    Raises:
      FlagError: naming the file, the record index and the label.
    """
    spec = {example_schema.LABEL: example_schema.FEATURE_SPEC[example_schema.LABEL]}
    checked = 0
    per_file = max(1, max_records // len(files))
    for path in files[:max_records]:
        dataset = tf.data.TFRecordDataset(path).take(per_file)
        for index, record in enumerate(dataset):
            label = int(tf.io.parse_single_example(record, spec)[example_schema.LABEL])
            if not 0 <= label < num_classes:
                raise FlagError(
                    f"{path} record {index} has label {label}, outside [0, --num_classes="
                    f"{num_classes}); the training files need labels (and num_classes must "
                    "match their relabeling.csv)."
                )
            checked += 1
    return checked


def check_image_size(image_size: int, backbone: str, min_input_size: int) -> None:
    """Raises FlagError if `--image_size` is below what `--backbone` takes."""
    if image_size < min_input_size:
        raise FlagError(
            f"--image_size={image_size} is too small for --backbone={backbone} "
            f"(minimum {min_input_size})."
        )
