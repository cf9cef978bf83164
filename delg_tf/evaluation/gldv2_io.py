"""Reading Google Landmarks v2 challenge solution and prediction CSV files.

Formats (Kaggle / official `dataset_file_io.py`), each with a header row:

- solution: `id,landmarks,Usage` (recognition; space-separated landmark ids, possibly empty) or
  `id,images,Usage` (retrieval; space-separated index image ids). Usage is Public, Private or
  Ignored; Ignored rows are not scored and their content is not parsed.
- predictions: `id,landmarks` with "`<landmark id> <score>`" (recognition) or `id,images` with
  space-separated index image ids, best first (retrieval). An empty second column means no
  prediction.

Differences from the official reader, on purpose: a prediction whose id is not in the solution
is skipped and counted (Kaggle ignores it; the official reader raised), and every malformed row
raises an error naming the file, the line and the problem.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import math
from collections.abc import Iterator
from typing import Any, NamedTuple

RECOGNITION = "recognition"
RETRIEVAL = "retrieval"
TASKS = (RECOGNITION, RETRIEVAL)
_TASK_COLUMN = {"landmarks": RECOGNITION, "images": RETRIEVAL}
_USAGES = ("Public", "Private", "Ignored")


class RecognitionPrediction(NamedTuple):
    """One recognition prediction: the predicted landmark and its confidence."""

    label: int
    score: float


@dataclasses.dataclass
class Solution:
    """Ground truth split by Usage.

    Attributes:
        task: `recognition` or `retrieval`.
        public: test id -> ground-truth ids (landmark ints or index image strs).
        private: Same for the Private rows.
        ignored: Test ids marked Ignored.
    """

    task: str
    public: dict[str, list]
    private: dict[str, list]
    ignored: set[str]


@dataclasses.dataclass
class Predictions:
    """Predictions split like the solution they were read against.

    Attributes:
        public: test id -> `RecognitionPrediction` or list of index image ids (best first).
        private: Same for Private test ids.
        num_unknown: Rows whose id is not in the solution (skipped, as Kaggle does).
        num_ignored: Rows for Ignored test ids (skipped).
    """

    public: dict[str, object]
    private: dict[str, object]
    num_unknown: int = 0
    num_ignored: int = 0


class CsvFormatError(ValueError):
    """A solution or prediction CSV is malformed; the message names the file and line."""


def _read_header(path: str, reader: csv.reader) -> list[str]:
    header = next(reader, None)
    if header is None:
        raise CsvFormatError(f"{path}: empty file, expected a header row")
    return [column.strip() for column in header]


def _task_from_column(path: str, header: list[str], expected_columns: int) -> str:
    if len(header) != expected_columns or header[0] != "id" or header[1] not in _TASK_COLUMN:
        layout = "id,landmarks|images" + (",Usage" if expected_columns == 3 else "")
        raise CsvFormatError(f"{path}:1: header {','.join(header)!r}, expected {layout!r}")
    if expected_columns == 3 and header[2] != "Usage":
        raise CsvFormatError(f"{path}:1: third column is {header[2]!r}, expected 'Usage'")
    return _TASK_COLUMN[header[1]]


def _check_task(path: str, found: str, task: str | None) -> str:
    if task is not None and task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
    if task is not None and found != task:
        raise CsvFormatError(f"{path}:1: header is for {found}, but task {task} was requested")
    return found


def _rows(path: str, reader: Any, num_columns: int) -> Iterator[tuple[int, str, list[str]]]:
    """Yields `(line, stripped test id, row)` for each non-blank row after the header.

    Raises:
        CsvFormatError: Naming file and line, for a wrong column count or an empty or repeated
            test id.
    """
    seen: set[str] = set()
    for row in reader:
        line = reader.line_num
        if not row:
            continue
        if len(row) != num_columns:
            raise CsvFormatError(
                f"{path}:{line}: expected {num_columns} columns, got {len(row)}: {row}"
            )
        test_id = row[0].strip()
        if not test_id:
            raise CsvFormatError(f"{path}:{line}: empty test id")
        if test_id in seen:
            raise CsvFormatError(f"{path}:{line}: test id {test_id!r} is repeated")
        seen.add(test_id)
        yield line, test_id, row


def _parse_label(path: str, line: int, token: str) -> int:
    try:
        return int(token)
    except ValueError:
        raise CsvFormatError(f"{path}:{line}: landmark id {token!r} is not an integer") from None


def read_solution(path: str, task: str | None = None) -> Solution:
    """Reads a solution CSV.

    Args:
        path: `id,landmarks|images,Usage` CSV with a header.
        task: Expected task; None detects it from the header.

    Returns:
        The `Solution` (Ignored rows only listed in `ignored`).

    Raises:
        CsvFormatError: Naming file and line, for a bad header, column count, Usage value,
            landmark id, empty or repeated test id.
    """
    public: dict[str, list] = {}
    private: dict[str, list] = {}
    ignored: set[str] = set()
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        task = _check_task(path, _task_from_column(path, _read_header(path, reader), 3), task)
        for line, test_id, row in _rows(path, reader, 3):
            ground_truth, usage = row[1], row[2].strip()
            if usage not in _USAGES:
                raise CsvFormatError(
                    f"{path}:{line}: Usage {usage!r} for {test_id!r}, expected one of {_USAGES}"
                )
            if usage == "Ignored":
                ignored.add(test_id)
                continue
            tokens = ground_truth.split()
            ids = [_parse_label(path, line, t) for t in tokens] if task == RECOGNITION else tokens
            (public if usage == "Public" else private)[test_id] = ids
    return Solution(task=task, public=public, private=private, ignored=ignored)


def _parse_recognition(path: str, line: int, test_id: str, text: str) -> RecognitionPrediction:
    tokens = text.split()
    if len(tokens) != 2:
        raise CsvFormatError(
            f"{path}:{line}: prediction for {test_id!r} must be '<landmark> <score>', got {text!r}"
        )
    label = _parse_label(path, line, tokens[0])
    try:
        score = float(tokens[1])
    except ValueError:
        raise CsvFormatError(f"{path}:{line}: score {tokens[1]!r} is not a number") from None
    if not math.isfinite(score):
        raise CsvFormatError(f"{path}:{line}: score {tokens[1]!r} is not finite")
    return RecognitionPrediction(label, score)


def read_predictions(path: str, solution: Solution) -> Predictions:
    """Reads a predictions CSV against a solution.

    Args:
        path: `id,landmarks` or `id,images` CSV with a header, matching `solution.task`.
        solution: The solution, used to split Public/Private and skip Ignored/unknown ids.

    Returns:
        `Predictions`. Test ids without a row (or with an empty second column) have no entry:
        the metrics count them as wrong.

    Raises:
        CsvFormatError: Naming file and line, for a bad header, column count, repeated test
            id or malformed recognition prediction.
    """
    predictions = Predictions(public={}, private={})
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        _check_task(path, _task_from_column(path, _read_header(path, reader), 2), solution.task)
        for line, test_id, row in _rows(path, reader, 2):
            text = row[1]
            if test_id in solution.ignored:
                predictions.num_ignored += 1
                continue
            if test_id in solution.public:
                target = predictions.public
            elif test_id in solution.private:
                target = predictions.private
            else:
                predictions.num_unknown += 1
                continue
            if not text.strip():
                continue
            if solution.task == RECOGNITION:
                target[test_id] = _parse_recognition(path, line, test_id, text)
            else:
                target[test_id] = text.split()
    if predictions.num_unknown:
        logging.warning(
            "%s: %d prediction rows have ids not in the solution; they were skipped (as Kaggle)",
            path,
            predictions.num_unknown,
        )
    return predictions
