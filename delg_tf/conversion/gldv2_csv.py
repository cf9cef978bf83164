"""Reads the Google Landmarks v2 CSV files: train.csv, train_clean.csv and test.csv.

- train.csv: columns `id` and `landmark_id` (others, like `url`, are ignored).
- train_clean.csv: columns `landmark_id` and `images` (space-separated ids).
- test.csv: column `id`.

A missing file or a missing required column raises `CsvFormatError` before any work, naming the
file and the column. Everything wrong with a single row (wrong number of fields, bad quoting, an
empty, unsafe or duplicate id, a non-integer or negative label, invalid UTF-8) makes that row's
ids `BadInput`s and reading continues. Rows are parsed one physical line at a time, so a stray
quote cannot swallow the rest of the file (GLDv2 fields never contain newlines).
A duplicate id keeps its first occurrence.
"""

from __future__ import annotations

import csv
import dataclasses
import os
from collections.abc import Iterator, Sequence

from delg_tf.conversion.bad_inputs import BadInput
from delg_tf.conversion.image_paths import id_problem


class CsvFormatError(ValueError):
    """A CSV file cannot be used at all (missing, unreadable, or missing a required column)."""


@dataclasses.dataclass(frozen=True)
class CsvEntries:
    """The usable rows of a CSV file.

    Attributes:
      ids: image ids, in file order, unique.
      labels: original label per id (`landmark_id`), or None for test.csv.
      bad_inputs: rows or ids that were skipped, in file order.
    """

    ids: list[str]
    labels: list[int] | None
    bad_inputs: list[BadInput]


def _rows(path: str, required: Sequence[str]) -> Iterator[tuple[int, dict[str, str] | str]]:
    """Yields (line number, {column: value}) per data row, or (line number, problem text)."""
    name = os.path.basename(path)
    try:
        f = open(path, encoding="utf-8-sig", errors="replace", newline="")  # noqa: SIM115
    except OSError as error:
        raise CsvFormatError(f"cannot open CSV file {path}: {error.strerror or error}") from error
    with f:
        header = None
        for line_number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                fields = next(csv.reader([line], strict=True))
            except csv.Error as error:
                if header is None:
                    raise CsvFormatError(f"{path}: unreadable header line ({error})") from error
                yield line_number, f"malformed CSV row ({name} line {line_number}: {error})"
                continue
            if header is None:
                header = [field.strip() for field in fields]
                missing = [column for column in required if column not in header]
                if missing:
                    raise CsvFormatError(
                        f"{path}: missing required column '{missing[0]}' "
                        f"(header has: {', '.join(header)}; needs: {', '.join(required)})"
                    )
                continue
            if len(fields) != len(header):
                yield (
                    line_number,
                    f"malformed CSV row ({name} line {line_number}: expected {len(header)} "
                    f"fields, got {len(fields)})",
                )
                continue
            if "\ufffd" in line:
                yield line_number, f"invalid UTF-8 in CSV row ({name} line {line_number})"
                continue
            yield line_number, dict(zip(header, fields, strict=True))
        if header is None:
            raise CsvFormatError(f"{path}: empty CSV file (no header line)")


def _parse_label(text: str) -> int:
    value = int(text.strip())
    if value < 0:
        raise ValueError("negative")
    return value


def _add_id(
    image_id: str,
    where: str,
    seen: dict[str, str],
    entries: CsvEntries,
    label: int | None,
) -> None:
    problem = id_problem(image_id)
    if problem:
        entries.bad_inputs.append(BadInput(image_id, "", f"{problem} ({where})"))
    elif image_id in seen:
        entries.bad_inputs.append(
            BadInput(image_id, "", f"duplicate id ({where}; first seen at {seen[image_id]})")
        )
    else:
        seen[image_id] = where
        entries.ids.append(image_id)
        if entries.labels is not None:
            entries.labels.append(label)


def _read_id_label_csv(path: str, with_labels: bool) -> CsvEntries:
    name = os.path.basename(path)
    required = ("id", "landmark_id") if with_labels else ("id",)
    entries = CsvEntries(ids=[], labels=[] if with_labels else None, bad_inputs=[])
    seen: dict[str, str] = {}
    for line_number, row in _rows(path, required):
        if isinstance(row, str):
            entries.bad_inputs.append(BadInput("", "", row))
            continue
        where = f"{name} line {line_number}"
        image_id = row["id"].strip()
        label = None
        if with_labels:
            try:
                label = _parse_label(row["landmark_id"])
            except ValueError:
                entries.bad_inputs.append(
                    BadInput(image_id, "", f"non-integer label ({where}: {row['landmark_id']!r})")
                )
                continue
        _add_id(image_id, where, seen, entries, label)
    return entries


def read_train_csv(path: str) -> CsvEntries:
    """Reads GLDv2 `train.csv` (`id`, `landmark_id`); labels are the original landmark ids."""
    return _read_id_label_csv(path, with_labels=True)


def read_test_csv(path: str) -> CsvEntries:
    """Reads GLDv2 `test.csv` (`id`); `labels` is None."""
    return _read_id_label_csv(path, with_labels=False)


def read_train_clean_csv(path: str) -> CsvEntries:
    """Reads GLDv2 `train_clean.csv` (`landmark_id`, `images` = space-separated ids).

    Returns:
      One entry per listed id with its original landmark id, in file order.
    """
    name = os.path.basename(path)
    entries = CsvEntries(ids=[], labels=[], bad_inputs=[])
    seen: dict[str, str] = {}
    for line_number, row in _rows(path, ("landmark_id", "images")):
        if isinstance(row, str):
            entries.bad_inputs.append(BadInput("", "", row))
            continue
        where = f"{name} line {line_number}"
        image_ids = row["images"].split()
        try:
            label = _parse_label(row["landmark_id"])
        except ValueError:
            reason = f"non-integer label ({where}: {row['landmark_id']!r})"
            entries.bad_inputs.extend(BadInput(i, "", reason) for i in image_ids or [""])
            continue
        if not image_ids:
            entries.bad_inputs.append(BadInput("", "", f"no image ids ({where})"))
        for image_id in image_ids:
            _add_id(image_id, where, seen, entries, label)
    return entries
