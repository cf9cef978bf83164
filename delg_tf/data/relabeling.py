"""Contiguous class ids and `relabeling.csv` (its name, writer and reader), as the official
build_image_dataset.py makes them."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from typing import TypeVar

# Written next to the training shards by delg-build-tfrecords; read by delg-train.
RELABELING_FILE = "relabeling.csv"

T = TypeVar("T", int, str)


def contiguous_relabeling(labels: Iterable[T]) -> dict[T, int]:
    """Maps each distinct original label to 0..K-1 in sorted order of the original label.

    Args:
      labels: original labels (GLDv2 landmark_id ints, or class folder names), repeats allowed.

    Returns:
      {old_label: new_label}, in increasing order of old_label.
    """
    return {label: index for index, label in enumerate(sorted(set(labels)))}


def relabeling_csv_text(relabeling: Mapping[T, int]) -> str:
    """`new_label,old_label` rows, official header and order (CSV-quoted when needed)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["new_label", "old_label"])
    for old_label, new_label in relabeling.items():
        writer.writerow([new_label, old_label])
    return buffer.getvalue()


def read_relabeling(path: str) -> int:
    """Number of classes listed in a `relabeling.csv` (`new_label,old_label`).

    The new labels must be exactly 0..N-1, as `relabeling_csv_text` writes them. Read through
    `tf.io.gfile` (training data may be on gs://); TensorFlow is imported only here, so the
    conversion binary that writes the file stays TensorFlow-free.

    Raises:
      ValueError: on a malformed file, naming the file and the line.
    """
    import tensorflow as tf

    with tf.io.gfile.GFile(path, "r") as f:
        rows = list(csv.reader(f))
    if not rows or [c.strip() for c in rows[0]] != ["new_label", "old_label"]:
        raise ValueError(f"{path}: expected the header 'new_label,old_label', got {rows[:1]}.")
    labels = []
    for line_number, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        try:
            labels.append(int(row[0]))
        except (ValueError, IndexError) as error:
            raise ValueError(f"{path}:{line_number}: bad new_label {row!r}.") from error
    if sorted(labels) != list(range(len(labels))):
        raise ValueError(f"{path}: new_label values are not exactly 0..{len(labels) - 1}.")
    return len(labels)
