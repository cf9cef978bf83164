"""The record of inputs skipped during TFRecord conversion, and `bad_inputs.csv`."""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Iterable

from delg_tf.common.atomic_files import write_text_atomically

BAD_INPUTS_COLUMNS = ("id", "path", "reason")


@dataclasses.dataclass(frozen=True)
class BadInput:
    """One skipped input.

    Attributes:
      image_id: the id as given (may be empty when a CSV row had none).
      path: the image path, or "" when the problem was found in a CSV row.
      reason: a short category, then optional details in parentheses, e.g.
        "non-integer label (train.csv line 7: 'abc')"; CSV problems name the file and line.
    """

    image_id: str
    path: str
    reason: str


def write_bad_inputs_csv(path: str, bad_inputs: Iterable[BadInput]) -> None:
    """Writes `id,path,reason` rows to `path` atomically (a header even when there are none)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(BAD_INPUTS_COLUMNS)
    for bad in bad_inputs:
        writer.writerow([bad.image_id, bad.path, bad.reason])
    write_text_atomically(path, buffer.getvalue())


def reason_category(reason: str) -> str:
    """The reason without its details, for counting in summaries ("missing file", ...)."""
    return reason.split(" (", 1)[0]
