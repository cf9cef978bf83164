"""Putative local-descriptor matches, with the official `image_reranking.MatchFeatures` semantics.

Default (the official code): every query descriptor is matched to its nearest index descriptor
(L2) if that distance is strictly below `distance_threshold` (1.0 for DELG); one-directional, no
ratio test. Options: a ratio test (k=2, d1 < ratio * d2, as the official `use_ratio_test`) and
mutual nearest neighbours.

Nearest neighbours come from one matrix product per block (||a-b||^2 = |a|^2 + |b|^2 - 2a.b) instead
of a k-d tree: k-d trees degrade to near brute force for 128-D data, while BLAS runs the same
brute force at full speed. The distances of the chosen pairs are then recomputed exactly in
float64, so the threshold test does not suffer from float32 cancellation.
"""

from __future__ import annotations

import numpy as np

_BLOCK_ELEMENTS = 1 << 22  # score entries per block (16 MB of float32)


def _nearest_two(
    queries: np.ndarray, index: np.ndarray, need_second: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """Per query row: the nearest index row and (optionally) the second-nearest squared distance.

    d^2 - |q|^2 = |b|^2 - 2 q.b is one matrix product of augmented matrices [-2q, 1] . [b, |b|^2],
    so no [M, N] temporary beyond the product itself is allocated.
    """
    m, n = queries.shape[0], index.shape[0]
    index_aug = np.empty((n, index.shape[1] + 1), np.float32)
    index_aug[:, :-1] = index
    index_aug[:, -1] = np.einsum("ij,ij->i", index, index)
    query_aug = np.empty((m, queries.shape[1] + 1), np.float32)
    query_aug[:, :-1] = -2.0 * queries
    query_aug[:, -1] = 1.0
    nearest = np.empty(m, np.int64)
    second_d2 = np.empty(m, np.float64) if need_second else None
    rows = max(1, _BLOCK_ELEMENTS // max(n, 1))
    for start in range(0, m, rows):
        partial = query_aug[start : start + rows] @ index_aug.T  # [rows, n], = d^2 - |q|^2
        best = np.argmin(partial, axis=1)
        nearest[start : start + rows] = best
        if need_second:
            if n < 2:
                second_d2[start : start + rows] = np.inf
                continue
            partial[np.arange(partial.shape[0]), best] = np.inf
            second = np.argmin(partial, axis=1)
            q = queries[start : start + rows].astype(np.float64)
            diff = q - index[second].astype(np.float64)
            second_d2[start : start + rows] = np.einsum("ij,ij->i", diff, diff)
    return nearest, second_d2


def match_descriptors(
    query_descriptors: np.ndarray,
    index_descriptors: np.ndarray,
    distance_threshold: float | None = 1.0,
    ratio: float | None = None,
    mutual: bool = False,
) -> np.ndarray:
    """Putative matches from query descriptors to index descriptors.

    Args:
      query_descriptors: [M, d] float.
      index_descriptors: [N, d] float.
      distance_threshold: keep a match only if its L2 distance is < this (None: no bound).
      ratio: if set, keep a match only if d1 < ratio * d2 (d2: second-nearest distance; inf when
        N < 2, as scipy's cKDTree reports it).
      mutual: if True, also require the query to be its index descriptor's nearest query.

    Returns:
      [K, 2] int64 pairs (query row, index row), in query order.
    """
    query = np.ascontiguousarray(query_descriptors, dtype=np.float32)
    index = np.ascontiguousarray(index_descriptors, dtype=np.float32)
    if query.ndim != 2 or index.ndim != 2 or query.shape[1] != index.shape[1]:
        raise ValueError(
            f"descriptor shapes {query.shape} and {index.shape} are not [M, d] and [N, d]"
        )
    if query.shape[0] == 0 or index.shape[0] == 0:
        return np.zeros((0, 2), np.int64)
    nearest, second_d2 = _nearest_two(query, index, need_second=ratio is not None)
    diff = query.astype(np.float64) - index[nearest].astype(np.float64)
    d1 = np.sqrt(np.einsum("ij,ij->i", diff, diff))
    keep = np.ones(query.shape[0], bool)
    if distance_threshold is not None:
        keep &= d1 < distance_threshold
    if ratio is not None:
        keep &= d1 < ratio * np.sqrt(second_d2)
    if mutual:
        back, _ = _nearest_two(index, query, need_second=False)
        keep &= back[nearest] == np.arange(query.shape[0])
    rows = np.flatnonzero(keep)
    return np.stack([rows, nearest[rows]], axis=1).astype(np.int64)
