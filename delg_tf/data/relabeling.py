"""Contiguous class ids and `relabeling.csv`, as the official build_image_dataset.py makes them."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from typing import TypeVar

from delg_tf.common.atomic_files import write_text_atomically

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


def write_relabeling_csv(path: str, relabeling: Mapping[T, int]) -> None:
    """Writes `relabeling_csv_text(relabeling)` to `path` atomically."""
    write_text_atomically(path, relabeling_csv_text(relabeling))
