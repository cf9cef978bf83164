"""Exact inner-product search: chunked matrix products with a running top-k merge.

For L2-normalised descriptors the inner product is the cosine similarity the official
`perform_retrieval.py` ranks by. Memory stays bounded by one [query_chunk, index_chunk] score
block, and the index can be a `ShardedRows` view of a feature store, so a million-image index is
streamed from its memory-mapped shards instead of being copied.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from delg_tf.retrieval.search_index import (
    SearchIndex,
    iter_row_chunks,
    read_sidecar,
    write_sidecar,
)


def _top_k_desc(scores: np.ndarray, indices: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the k best (score, index) pairs, sorted by score descending then index ascending."""
    if scores.shape[1] > k:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        scores = np.take_along_axis(scores, part, axis=1)
        indices = np.take_along_axis(indices, part, axis=1)
    order = np.lexsort((indices, -scores), axis=1)
    return np.take_along_axis(scores, order, axis=1), np.take_along_axis(indices, order, axis=1)


def exact_search(
    queries: np.ndarray,
    index: Any,
    k: int,
    query_chunk: int = 1024,
    index_chunk: int = 32768,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k inner-product search.

    Args:
      queries: [Q, D] query descriptors.
      index: [N, D] index descriptors: an array, a memmap or a `ShardedRows` view (any float
        dtype; blocks are converted to float32 one at a time).
      k: results per query; clipped to N.
      query_chunk: queries per block.
      index_chunk: index rows per block.

    Returns:
      scores [Q, k] float32 (descending) and indices [Q, k] int64 rows of `index`. Equal scores
      are ordered by index ascending, like a stable argsort of -scores.
    """
    queries = np.asarray(queries, dtype=np.float32)
    num_index = len(index)
    if queries.ndim != 2 or queries.shape[1] != index.shape[1]:
        raise ValueError(f"queries have shape {queries.shape}, index has shape {index.shape}")
    k = min(int(k), num_index)
    num_queries = queries.shape[0]
    out_scores = np.empty((num_queries, k), np.float32)
    out_indices = np.empty((num_queries, k), np.int64)
    if k <= 0:
        return out_scores, out_indices
    # Index blocks are the outer loop so each block is read from disk once per call.
    query_starts = range(0, num_queries, query_chunk)
    running = [
        (
            np.zeros((min(query_chunk, num_queries - q0), 0), np.float32),
            np.zeros((min(query_chunk, num_queries - q0), 0), np.int64),
        )
        for q0 in query_starts
    ]
    for start, block in iter_row_chunks(index, index_chunk):
        block = np.asarray(block, dtype=np.float32)
        block_ids = np.arange(start, start + block.shape[0], dtype=np.int64)
        for c, q0 in enumerate(query_starts):
            q = queries[q0 : q0 + query_chunk]
            scores = q @ block.T
            ids = np.broadcast_to(block_ids, scores.shape)
            prev_s, prev_i = running[c]
            running[c] = _top_k_desc(
                np.concatenate([prev_s, scores], axis=1), np.concatenate([prev_i, ids], axis=1), k
            )
    for c, q0 in enumerate(query_starts):
        out_scores[q0 : q0 + query_chunk], out_indices[q0 : q0 + query_chunk] = running[c]
    return out_scores, out_indices


def similarity_matrix(queries: np.ndarray, index: Any, index_chunk: int = 32768) -> np.ndarray:
    """All query-index inner products, [Q, N] float32, streaming the index in blocks."""
    queries = np.asarray(queries, dtype=np.float32)
    out = np.empty((queries.shape[0], len(index)), np.float32)
    for start, block in iter_row_chunks(index, index_chunk):
        out[:, start : start + block.shape[0]] = queries @ np.asarray(block, np.float32).T
    return out


class ExactIndex(SearchIndex):
    """Brute-force inner-product index behind the `SearchIndex` interface.

    Args:
      query_chunk, index_chunk: block sizes of `exact_search`.
    """

    kind = "exact"

    def __init__(self, query_chunk: int = 1024, index_chunk: int = 32768):
        self.query_chunk = query_chunk
        self.index_chunk = index_chunk
        self._descriptors: Any = None
        self.ids: list[str] | None = None

    def build(self, descriptors: Any, ids: list[str] | None = None) -> ExactIndex:
        """Keeps a reference to [N, D] descriptors (array, memmap or ShardedRows; not copied)."""
        if ids is not None and len(ids) != len(descriptors):
            raise ValueError(f"{len(ids)} ids for {len(descriptors)} descriptors")
        self._descriptors = descriptors
        self.ids = None if ids is None else list(ids)
        return self

    def __len__(self) -> int:
        return 0 if self._descriptors is None else len(self._descriptors)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self._descriptors is None:
            raise RuntimeError("ExactIndex.search called before build()")
        return exact_search(queries, self._descriptors, k, self.query_chunk, self.index_chunk)

    def save(self, path: str) -> None:
        """Writes `path` (.npy float32 descriptors) and the `path.json` sidecar."""
        with open(path, "wb") as f:
            np.save(f, np.asarray(self._descriptors, dtype=np.float32))
        write_sidecar(
            path,
            self.kind,
            self.ids,
            {"query_chunk": self.query_chunk, "index_chunk": self.index_chunk},
        )

    @classmethod
    def load(cls, path: str) -> ExactIndex:
        meta = read_sidecar(path, cls.kind)
        try:
            descriptors = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as e:
            raise ValueError(f"{path}: cannot read exact index ({e})") from e
        index = cls(**meta["params"])
        return index.build(descriptors, meta["ids"])
