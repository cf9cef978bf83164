"""Revisited Oxford/Paris metrics (revisitop conventions) and the official `metrics.txt` format.

Conventions, as revisitop's `compute_map` and the official DELF `datasets/revisited_op/dataset.py`:

- Protocols: easy (positives easy; junk = junk + hard), medium (positives easy + hard; junk =
  junk), hard (positives hard; junk = junk + easy).
- Junk images are removed from the ranking by shifting each positive's 0-based rank down by the
  number of junk images ranked before it.
- AP is the trapezoidal area under the precision-recall curve: for the i-th positive (0-based)
  at adjusted rank r, add `((1 if r == 0 else i / r) + (i + 1) / (r + 1)) / 2 / num_positives`.
- mP@k is precision at `min(k, 1-based rank of the last positive)`; mR@k is recall at k.
- Queries with no positives under a protocol get NaN and are left out of the means.

`num_positives` is the number of distinct ground-truth positives (revisitop's `len(qgnd)`), so a
truncated ranking that misses positives is penalised; with full rankings it equals the official
DELF count of positives found.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from delg_tf.common.atomic_files import write_text_atomically

PROTOCOLS = ("easy", "medium", "hard")
# The protocols the paper (and every table here) reports; easy is computed but not shown.
REPORTED_PROTOCOLS = ("medium", "hard")
DEFAULT_KAPPAS = (1, 5, 10)
INDEX_ORDER = ("easy", "hard", "junk")


def protocol_ground_truth(
    gnd_entry: Mapping[str, Any], protocol: str
) -> tuple[np.ndarray, np.ndarray]:
    """Positives and junk of one query under a protocol.

    Args:
        gnd_entry: One query's ground truth with `easy`, `hard`, `junk` index arrays.
        protocol: `easy`, `medium` or `hard`.

    Returns:
        (positives, junk): int64 arrays `[P]` and `[J]` of index-image ids, concatenated in the
        official order (easy: junk+hard; medium: easy+hard; hard: junk+easy).

    Raises:
        ValueError: For an unknown protocol.
    """
    missing = [k for k in INDEX_ORDER if k not in gnd_entry]
    if missing:
        raise ValueError(f"ground-truth entry lacks {missing} (has {sorted(gnd_entry)})")
    easy, hard, junk = (np.asarray(gnd_entry[k], dtype=np.int64).reshape(-1) for k in INDEX_ORDER)
    if protocol == "easy":
        return easy, np.concatenate([junk, hard])
    if protocol == "medium":
        return np.concatenate([easy, hard]), junk
    if protocol == "hard":
        return hard, np.concatenate([junk, easy])
    raise ValueError(f"unknown protocol {protocol!r}; expected one of {PROTOCOLS}")


def adjusted_positive_ranks(
    ranking: np.ndarray, positives: np.ndarray, junk: np.ndarray
) -> np.ndarray:
    """0-based ranks of the positives in `ranking` after removing junk images.

    Args:
        ranking: int array `[N]`, index ids best first.
        positives: int array `[P]` of positive ids.
        junk: int array `[J]` of ids to ignore.

    Returns:
        int64 array `[P']` (P' <= P: positives absent from `ranking` are missing), ascending.
    """
    ranking = np.asarray(ranking).reshape(-1)
    positive_positions = np.flatnonzero(np.isin(ranking, positives))
    junk_positions = np.flatnonzero(np.isin(ranking, junk))
    # Junk strictly before each positive shifts it up (revisitop's loop, vectorised).
    return positive_positions - np.searchsorted(junk_positions, positive_positions, side="left")


def average_precision(ranks: np.ndarray, num_positives: int | None = None) -> float:
    """Trapezoidal revisitop AP from adjusted 0-based positive ranks.

    Args:
        ranks: ascending int array `[P']` of junk-adjusted 0-based ranks of positives.
        num_positives: Number of ground-truth positives (defaults to `len(ranks)`).

    Returns:
        AP in [0, 1]; 0.0 when there are no ranks.
    """
    ranks = np.asarray(ranks, dtype=np.float64).reshape(-1)
    num_positives = len(ranks) if num_positives is None else num_positives
    if not len(ranks) or not num_positives:
        return 0.0
    i = np.arange(len(ranks), dtype=np.float64)
    left = np.where(ranks == 0, 1.0, i / np.maximum(ranks, 1.0))
    right = (i + 1.0) / (ranks + 1.0)
    return float(np.sum((left + right) / 2.0) / num_positives)


def precision_recall_at(
    ranks: np.ndarray, kappas: Sequence[int], num_positives: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall at each k, with revisitop's precision cap at the last positive.

    Args:
        ranks: ascending int array `[P']` of junk-adjusted 0-based ranks of positives.
        kappas: The k values, `[K]`.
        num_positives: Number of ground-truth positives (defaults to `len(ranks)`).

    Returns:
        (precisions, recalls): float64 arrays `[K]`; zeros when no positive was found.
    """
    ranks_1 = np.asarray(ranks, dtype=np.int64).reshape(-1) + 1
    num_positives = len(ranks_1) if num_positives is None else num_positives
    precisions = np.zeros(len(kappas))
    recalls = np.zeros(len(kappas))
    if not len(ranks_1) or not num_positives:
        return precisions, recalls
    last = int(ranks_1.max())
    for j, k in enumerate(kappas):
        kq = min(last, int(k))
        precisions[j] = np.count_nonzero(ranks_1 <= kq) / kq
        recalls[j] = np.count_nonzero(ranks_1 <= k) / num_positives
    return precisions, recalls


def _check_kappas(kappas: Sequence[int], num_index: int) -> tuple[int, ...]:
    kappas = tuple(int(k) for k in kappas)
    if not kappas or min(kappas) < 1:
        raise ValueError(f"kappas must be positive integers, got {kappas}")
    if max(kappas) > num_index:
        raise ValueError(f"kappas go up to {max(kappas)} but rankings hold {num_index} images")
    return kappas


def compute_metrics(
    ranks: np.ndarray,
    gnd: Sequence[Mapping[str, Any]],
    kappas: Sequence[int] = DEFAULT_KAPPAS,
) -> dict[str, dict[str, Any]]:
    """mAP, mP@k and mR@k for the easy, medium and hard protocols.

    Args:
        ranks: int array `[num_queries, num_index]`, row q holding index ids best first (a full
            ranking; a truncated one counts the positives it misses as not retrieved).
        gnd: Per-query ground truth (`easy`, `hard`, `junk` index arrays), as loaded by
            `delg_tf.data.revisited_ground_truth.load_ground_truth(...)['gnd']`.
        kappas: The k of mP@k / mR@k, each <= num_index.

    Returns:
        `{protocol: {'mAP': float, 'mP@k': [K], 'mR@k': [K], 'aps': [num_queries],
        'P@k': [num_queries, K], 'R@k': [num_queries, K], 'num_valid_queries': int}}` for
        protocol in easy/medium/hard; fractions in [0, 1]; per-query values NaN (and left out
        of the means) where the query has no positives; means NaN if no query has any.

    Raises:
        ValueError: If shapes disagree, a kappa is out of range or a row repeats a positive.
    """
    ranks = np.asarray(ranks)
    if ranks.ndim != 2 or (ranks.size and ranks.dtype.kind not in "iu"):
        raise ValueError(f"ranks must be an int array [num_queries, num_index], got {ranks.shape}")
    num_queries, num_index = ranks.shape
    if num_queries != len(gnd):
        raise ValueError(f"ranks has {num_queries} rows but gnd has {len(gnd)} queries")
    kappas = _check_kappas(kappas, num_index)
    results = {}
    for protocol in PROTOCOLS:
        aps = np.full(num_queries, np.nan)
        prs = np.full((num_queries, len(kappas)), np.nan)
        recalls = np.full((num_queries, len(kappas)), np.nan)
        for q in range(num_queries):
            try:
                positives, junk = protocol_ground_truth(gnd[q], protocol)
            except ValueError as e:
                raise ValueError(f"gnd query {q}: {e}") from e
            num_positives = len(np.unique(positives))
            if not num_positives:
                continue
            adjusted = adjusted_positive_ranks(ranks[q], positives, junk)
            if len(adjusted) > num_positives:
                raise ValueError(f"ranks row {q} lists a positive image more than once")
            aps[q] = average_precision(adjusted, num_positives)
            prs[q], recalls[q] = precision_recall_at(adjusted, kappas, num_positives)
        valid = ~np.isnan(aps)
        num_valid = int(valid.sum())
        results[protocol] = {
            "mAP": float(aps[valid].mean()) if num_valid else float("nan"),
            "mP@k": prs[valid].mean(axis=0) if num_valid else np.full(len(kappas), np.nan),
            "mR@k": recalls[valid].mean(axis=0) if num_valid else np.full(len(kappas), np.nan),
            "aps": aps,
            "P@k": prs,
            "R@k": recalls,
            "num_valid_queries": num_valid,
        }
    return results


# ----------------------------------------------------------------------------------------------
# metrics.txt, byte-compatible with the official SaveMetricsFile / ReadMetricsFile: protocols in
# sorted order, values in percent rounded to 2 decimals, numpy's array printing.


def _format_array(values: np.ndarray) -> str:
    # Default print options (as the official file, which used str()), whatever the caller set;
    # a wide line so long kappa lists stay on one line.
    with np.printoptions(
        precision=8, suppress=False, floatmode="maxprec", linewidth=10**6, threshold=10**6
    ):
        return str(np.asarray(values))


def format_metrics(metrics: Mapping[str, Mapping[str, Any]], kappas: Sequence[int]) -> str:
    """The text of a `metrics.txt` (see `save_metrics_file`)."""
    kappas_text = _format_array(np.asarray([int(k) for k in kappas]))
    lines = []
    for name in sorted(metrics):
        if not name or "\n" in name or name != name.strip():
            raise ValueError(f"protocol name {name!r} cannot be written to metrics.txt")
        entry = metrics[name]
        precisions = np.asarray(entry["mP@k"], dtype=np.float64).reshape(-1)
        recalls = np.asarray(entry["mR@k"], dtype=np.float64).reshape(-1)
        if len(precisions) != len(kappas) or len(recalls) != len(kappas):
            raise ValueError(f"protocol {name!r}: mP@k/mR@k do not have {len(kappas)} values")
        map_text = str(np.around(np.float64(entry["mAP"]) * 100, decimals=2))
        lines += [
            name,
            f"  mAP={map_text}",
            f"  mP@k{kappas_text} {_format_array(np.around(precisions * 100, decimals=2))}",
            f"  mR@k{kappas_text} {_format_array(np.around(recalls * 100, decimals=2))}",
        ]
    return "".join(line + "\n" for line in lines)


def save_metrics_file(
    path: str, metrics: Mapping[str, Mapping[str, Any]], kappas: Sequence[int] = DEFAULT_KAPPAS
) -> None:
    """Writes `metrics.txt` in the official format, atomically.

    Each protocol (sorted by name; the official run writes `hard`, `hard_after_gv`, `medium`,
    `medium_after_gv`) takes four lines; values are percentages rounded to 2 decimals:

        medium
          mAP=81.23
          mP@k[ 1  5 10] [97.14 90.   85.71]
          mR@k[ 1  5 10] [ 5.12 20.4  33.  ]

    Args:
        path: Destination file.
        metrics: `{name: {'mAP': float, 'mP@k': [K], 'mR@k': [K]}}` as fractions (e.g. the
            per-protocol dicts of `compute_metrics`).
        kappas: The k values the arrays refer to.
    """
    write_text_atomically(path, format_metrics(metrics, kappas))


_BRACKETS = re.compile(r"^\[([^\[\]]*)\]\s*\[([^\[\]]*)\]$")


def _parse_pr_line(path: str, line_no: int, line: str, prefix: str) -> tuple[list[int], np.ndarray]:
    if not line.startswith(prefix):
        raise ValueError(f"{path}:{line_no}: expected a line starting {prefix!r}, got {line!r}")
    match = _BRACKETS.match(line[len(prefix) :].strip())
    if not match:
        raise ValueError(f"{path}:{line_no}: expected '[k ...] [values ...]', got {line!r}")
    try:
        kappas = [int(k) for k in match.group(1).split()]
        values = np.asarray([float(v) for v in match.group(2).split()], dtype=np.float64)
    except ValueError as e:
        raise ValueError(f"{path}:{line_no}: malformed number in {line!r}: {e}") from e
    if len(values) != len(kappas):
        raise ValueError(f"{path}:{line_no}: {len(kappas)} ranks but {len(values)} values")
    return kappas, values / 100.0


def parse_metrics(text: str, path: str = "<metrics>") -> tuple[dict[str, dict[str, Any]], list]:
    """Parses `metrics.txt` text (see `read_metrics_file`)."""
    lines = [line.rstrip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    if len(lines) % 4:
        raise ValueError(f"{path}: malformed: {len(lines)} lines, expected a multiple of 4")
    metrics: dict[str, dict[str, Any]] = {}
    kappas: list[int] = []
    for start in range(0, len(lines), 4):
        name = lines[start]
        if not name or name.startswith(" "):
            raise ValueError(f"{path}:{start + 1}: expected a protocol name, got {name!r}")
        if name in metrics:
            raise ValueError(f"{path}:{start + 1}: protocol {name!r} appears a second time")
        map_line = lines[start + 1]
        if not map_line.startswith("  mAP="):
            raise ValueError(f"{path}:{start + 2}: expected '  mAP=<value>', got {map_line!r}")
        try:
            mean_ap = float(map_line[len("  mAP=") :]) / 100.0
        except ValueError as e:
            raise ValueError(f"{path}:{start + 2}: malformed mAP in {map_line!r}") from e
        p_kappas, precisions = _parse_pr_line(path, start + 3, lines[start + 2], "  mP@k")
        r_kappas, recalls = _parse_pr_line(path, start + 4, lines[start + 3], "  mR@k")
        if r_kappas != p_kappas or (kappas and p_kappas != kappas):
            raise ValueError(f"{path}:{start + 3}: inconsistent ranks {p_kappas} vs {kappas}")
        kappas = p_kappas
        metrics[name] = {"mAP": mean_ap, "mP@k": precisions, "mR@k": recalls}
    return metrics, kappas


def read_metrics_file(path: str) -> tuple[dict[str, dict[str, Any]], list[int]]:
    """Reads a `metrics.txt` written here or by the official code.

    Args:
        path: The file.

    Returns:
        (metrics, kappas): `{name: {'mAP': float, 'mP@k': [K], 'mR@k': [K]}}` as fractions
        (the file's percentages / 100), and the k values.

    Raises:
        ValueError: Naming the file and line for any malformed or repeated entry.
    """
    with open(path, encoding="utf-8") as f:
        return parse_metrics(f.read(), path)
