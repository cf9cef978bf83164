"""The small interface shared by exact and faiss global search, its JSON sidecar, row chunking.

The concrete indexes import this module; `index_loading.load_index` imports them (no circle).
"""

from __future__ import annotations

import abc
import json
from collections.abc import Iterator
from typing import Any

import numpy as np

from delg_tf.common.atomic_files import write_json_atomically

SIDECAR_SUFFIX = ".json"


class SearchIndex(abc.ABC):
    """Inner-product nearest-neighbour index over [N, D] global descriptors.

    `search` returns rows (0..N-1) of the built descriptors; `ids` (optional) names them.
    """

    kind: str = ""
    ids: list[str] | None

    @abc.abstractmethod
    def build(self, descriptors: Any, ids: list[str] | None = None) -> SearchIndex:
        """Indexes [N, D] descriptors (array, memmap or `ShardedRows`)."""

    @abc.abstractmethod
    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Returns scores [Q, k] float32 (descending) and indices [Q, k] int64 (-1 if none)."""

    @abc.abstractmethod
    def save(self, path: str) -> None:
        """Writes the index to `path` and its ids/parameters to `path + '.json'`."""

    @classmethod
    @abc.abstractmethod
    def load(cls, path: str) -> SearchIndex:
        """Reads an index written by `save`."""


def write_sidecar(path: str, kind: str, ids: list[str] | None, params: dict) -> None:
    """Atomically writes {"kind", "params", "ids"} next to an index file."""
    write_json_atomically(
        path + SIDECAR_SUFFIX, {"kind": kind, "params": params, "ids": ids}, sync=False
    )


def read_sidecar(path: str, kind: str | None = None) -> dict:
    """Reads and checks the sidecar of the index at `path`."""
    sidecar = path + SIDECAR_SUFFIX
    try:
        with open(sidecar, encoding="utf-8") as f:
            meta = json.load(f)
        meta["kind"], meta["params"], meta["ids"]  # noqa: B018 - presence check
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{sidecar}: missing or corrupt index sidecar ({e})") from e
    if kind is not None and meta["kind"] != kind:
        raise ValueError(f"{sidecar}: index kind is {meta['kind']!r}, expected {kind!r}")
    return meta


def iter_row_chunks(rows: Any, max_rows: int) -> Iterator[tuple[int, np.ndarray]]:
    """Yields (first_row, block [<=max_rows, D]) over an array or a `ShardedRows` view."""
    if hasattr(rows, "chunks"):
        yield from rows.chunks(max_rows)
        return
    for start in range(0, len(rows), max_rows):
        yield start, rows[start : start + max_rows]
