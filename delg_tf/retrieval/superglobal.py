"""SuperGlobal re-ranking of the top-M global results (Shao et al., ICCV 2023, Sec. 3.3).

Two steps on the query q and its top-M candidates d_1..d_M (global ranking order), as the
authors' `modules/reranking/MDescAug.py` and `RerankwMDA.py` (repository
ShihaoShao-GH/SuperGlobal) compute them:

1. MDescAug (descriptor augmentation inside the top-M): with s_ij = <d_i, d_j>, each candidate's
   K nearest other candidates N_i give the refined descriptor
       d_i' = (d_i + sum_{j in N_i} beta * s_ij * d_j) / (1 + sum_{j in N_i} beta * s_ij),
   a weighted mean (not re-normalised, as the repository), scored s1_i = <q, d_i'>.
2. RerankwMDA (re-ranking with maximum descriptor aggregation): the refined query is the
   element-wise maximum of the refined descriptors of the K + 1 best candidates by s1,
   q' = max_{i in top-(K+1) by s1} d_i', and every candidate gets (s1_i + <q', d_i'>) / 2.

The M candidates are sorted by that score; the rest of the ranking keeps its order. Defaults
M = 400, K = 9, beta = 0.15 are the repository's `MDescAug`/`RerankwMDA` constructor defaults
(`M=400, K=9, beta=0.15`) and the paper's setting.

Where we differ, on purpose (WORKSPACE_NOTES.md): the candidate itself is always its first
neighbour (weight 1) and its K others exclude it (the repository takes the top K + 1 of the row,
which is the same unless another candidate is an exact duplicate); negative similarities get
weight 0 (the repository lets beta * s_ij < 0 shrink the denominator, which can reach 0);
and the rankings are stable sorts (equal scores keep the better previous rank; torch.argsort is
unstable). The K neighbours are a selection, not a sort (only their set matters); a tie at the
K-th similarity goes to the better-ranked candidate.

Cost: d_i' is linear in the d_j, so every score above is a K-term combination of the raw
projections <x, d_j> (x = q, then q'): only the K + 1 refined descriptors that q' needs are ever
formed. What remains per query is the [M, M] Gram matrix (M^2 D / 2 multiply-adds, numpy's syrk)
and the selection of each row's K largest; the rest is O(M (K + D)).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from delg_tf.common.cores import usable_cores

# SuperGlobal repository, modules/reranking/MDescAug.py and RerankwMDA.py defaults.
DEFAULT_M = 400
DEFAULT_K = 9
DEFAULT_BETA = 0.15


@dataclasses.dataclass(frozen=True)
class SuperGlobalConfig:
    """SuperGlobal re-ranking settings.

    Attributes:
      m: candidates re-ranked per query (clipped to the index size).
      k: neighbours per candidate in MDescAug; the query aggregates the best k + 1.
      beta: weight factor of the neighbours' similarities.
    """

    m: int = DEFAULT_M
    k: int = DEFAULT_K
    beta: float = DEFAULT_BETA

    def __post_init__(self):
        if self.m < 1:
            raise ValueError(f"SuperGlobal M must be >= 1, got {self.m}")
        if self.k < 0:
            raise ValueError(f"SuperGlobal K must be >= 0, got {self.k}")
        if not self.beta >= 0:
            raise ValueError(f"SuperGlobal beta must be >= 0, got {self.beta}")


def _stable_desc(scores: np.ndarray) -> np.ndarray:
    """Per row, the order of `scores` descending; ties keep their current order."""
    return np.argsort(-scores, axis=-1, kind="stable")


def _top_k_slots(scores: np.ndarray, k: int) -> np.ndarray:
    """Per row of [..., M] scores, the slots of the k largest, in slot order: [..., k] int64.

    A tie at the k-th value goes to the lower slots (the better global ranks). The k-th value
    comes from a partition of the values (O(M) per row), and the slots from one pass over the
    mask of the values >= it: about half the cost of `np.argpartition`, which permutes an index
    array beside every row. Rows with a tie at the k-th value (rare) are trimmed to k.
    """
    m = scores.shape[-1]
    kth = np.partition(scores, m - k, axis=-1)[..., m - k, None]
    keep = scores >= kth  # at least k per row; exactly k unless the k-th value is tied
    if np.count_nonzero(keep) != keep.size // m * k:
        counts = np.count_nonzero(keep, axis=-1)
        if (counts < k).any():  # only a NaN k-th value compares false with everything
            raise ValueError("SuperGlobal: NaN in the candidates' similarities (NaN descriptors?)")
        rows = counts > k
        row_scores, row_kth = scores[rows], kth[rows]
        above = row_scores > row_kth
        tied = row_scores == row_kth
        room = k - np.count_nonzero(above, axis=-1, keepdims=True)
        keep[rows] = above | (tied & (np.cumsum(tied, axis=-1) <= room))
    return (np.flatnonzero(keep) % m).reshape(scores.shape[:-1] + (k,))


def _mdescaug_neighbours(candidates: np.ndarray, k: int, beta: float):
    """Each candidate's k nearest other candidates and their MDescAug weights.

    Args:
      candidates: [B, M, D] float32.
      k: neighbours per candidate (already clipped to M - 1).
      beta: neighbour weight factor.

    Returns:
      slots [B, M, k] int64 (the neighbours' slots), weights [B, M, k] float64
      (beta * max(s_ij, 0)) and norms [B, M] float64 (1 + the sum of the weights).
    """
    b, m, _ = candidates.shape
    if k == 0:
        return np.zeros((b, m, 0), np.int64), np.zeros((b, m, 0)), np.ones((b, m))
    # numpy computes X X^T with syrk (half the flops of a general product).
    gram = np.matmul(candidates, candidates.transpose(0, 2, 1))  # [B, M, M]
    diagonal = np.arange(m)
    gram[:, diagonal, diagonal] = -np.inf  # the candidate itself is added with weight 1
    slots = _top_k_slots(gram, k)
    similarities = np.take_along_axis(gram, slots, axis=2)
    weights = beta * np.maximum(similarities, 0.0).astype(np.float64)
    return slots, weights, 1.0 + weights.sum(axis=2)


def _gather(values: np.ndarray, slots: np.ndarray) -> np.ndarray:
    """values[b, slots[b, ...]]: [B, M, ...] per-query rows picked by [B, ...] slots."""
    rows = np.arange(values.shape[0]).reshape((-1,) + (1,) * (slots.ndim - 1))
    return values[rows, slots]


def _refined_inner_products(projections, slots, weights, norms) -> np.ndarray:
    """<x, d_i'> for every candidate i, from the projections <x, d_j> of the raw candidates.

    d_i' is linear in the d_j, so <x, d_i'> = (p_i + sum_j w_ij p_j) / n_i with p = <x, d>: the
    refined descriptors themselves are never formed (no [B, M, M] x [B, M, D] product).

    Args:
      projections: [B, M] float32 p_j = <x, d_j>.
      slots, weights, norms: from `_mdescaug_neighbours`.

    Returns:
      [B, M] float32. Summed in float64 and rounded once, so identical candidates get the same
      float32 value whatever the order of their neighbour lists (float64 rounding differences
      are far below float32's).
    """
    p = projections.astype(np.float64)
    total = p + (weights * _gather(p, slots)).sum(axis=2)
    return (total / norms).astype(np.float32)


def _refine_rows(candidates, slots, weights, norms, rows) -> np.ndarray:
    """MDescAug refined descriptors d_i' of the candidates at `rows` [B, R]: [B, R, D] float32."""
    out = _gather(candidates, rows).copy()
    for j in range(slots.shape[2]):  # one [B, R, D] gather per neighbour rank, not [B, R, k, D]
        neighbours = _gather(candidates, _gather(slots[:, :, j], rows))
        out += _gather(weights[:, :, j], rows)[..., None].astype(np.float32) * neighbours
    return out / _gather(norms, rows)[..., None].astype(np.float32)


def refine_candidates(candidates: np.ndarray, k: int, beta: float) -> np.ndarray:
    """MDescAug: each candidate averaged with its k nearest other candidates.

    Args:
      candidates: [B, M, D] float32 descriptors of B queries' top-M candidates.
      k: neighbours per candidate (clipped to M - 1).
      beta: neighbour weight factor.

    Returns:
      [B, M, D] float32 refined descriptors d'.
    """
    b, m, _ = candidates.shape
    neighbours = _mdescaug_neighbours(candidates, min(k, m - 1), beta)
    return _refine_rows(candidates, *neighbours, np.broadcast_to(np.arange(m), (b, m)))


def rerank_scores(queries: np.ndarray, candidates: np.ndarray, k: int, beta: float):
    """SuperGlobal scores of B queries' top-M candidates.

    Args:
      queries: [B, D] float32 query descriptors.
      candidates: [B, M, D] float32 their candidates, in global ranking order.
      k, beta: see `SuperGlobalConfig`.

    Returns:
      (order [B, M]: candidate slots best first, scores [B, M] float32: the final score per slot).
    """
    neighbours = _mdescaug_neighbours(candidates, min(k, candidates.shape[1] - 1), beta)
    # einsum runs the same loop for every row: identical candidates get identical projections.
    first = _refined_inner_products(np.einsum("bd,bmd->bm", queries, candidates), *neighbours)
    by_first = _stable_desc(first)  # s1 = <q, d'>
    # q' = max of the best k + 1 refined descriptors: the only ones formed.
    expanded = _refine_rows(candidates, *neighbours, by_first[:, : k + 1]).max(axis=1)  # [B, D]
    second = _refined_inner_products(np.einsum("bd,bmd->bm", expanded, candidates), *neighbours)
    final = (first + second) / 2.0
    # Sort in s1 order first, so equal final scores keep the MDescAug ranking.
    order_in_first = _stable_desc(np.take_along_axis(final, by_first, axis=1))
    order = np.take_along_axis(by_first, order_in_first, axis=1)
    return order, final


def _candidate_rows(index: Any, top: np.ndarray) -> np.ndarray:
    """index[top] as [B, M, D] float32: one copy from an array or memmap, each distinct row read
    once (in row order) from anything else (`ShardedRows` takes 1-D row lists only)."""
    if isinstance(index, np.ndarray):
        return np.take(index, top, axis=0).astype(np.float32, copy=False)
    unique, inverse = np.unique(top, return_inverse=True)
    return np.asarray(index[unique], np.float32)[inverse.reshape(top.shape)]


def superglobal_rerank(
    queries: np.ndarray,
    index: Any,
    ranks: np.ndarray,
    config: SuperGlobalConfig = SuperGlobalConfig(),
    query_chunk: int = 8,
    workers: int | None = None,
) -> np.ndarray:
    """Re-ranks the top-M of every query's ranking by SuperGlobal; the tail keeps its order.

    Args:
      queries: [Q, D] query descriptors (unit norm).
      index: [N, D] index descriptors (array, memmap or `ShardedRows`; only candidates are read).
      ranks: [Q, N] index rows, best first.
      config: M, K, beta.
      query_chunk: queries per batched block ([chunk, M, M] similarities in memory per worker).
      workers: threads, each re-ranking whole chunks with a one-thread BLAS (default: the usable
        cores). Chunks are independent, so the result does not depend on it. Measured on 2
        cores (delg-benchmark --parts=training_free, D = 2048): about 2x faster than one
        thread, and 2.7x faster than one chunk at a time on OpenBLAS's own 2 threads, whose
        [400, 400] products are too small to split well.

    Returns:
      [Q, N] int64 new ranks.
    """
    queries = np.asarray(queries, np.float32)
    ranks = np.asarray(ranks, np.int64)
    m = min(config.m, ranks.shape[1])
    out = ranks.copy()

    def rerank_chunk(q0: int) -> None:
        top = ranks[q0 : q0 + query_chunk, :m]
        candidates = _candidate_rows(index, top)
        order, _ = rerank_scores(queries[q0 : q0 + query_chunk], candidates, config.k, config.beta)
        out[q0 : q0 + query_chunk, :m] = np.take_along_axis(top, order, axis=1)

    starts = range(0, queries.shape[0], query_chunk)
    workers = max(1, min(workers or usable_cores(), len(starts)))
    # numpy releases the GIL in its BLAS calls and loops: the threads run in parallel.
    with threadpool_limits(limits=1, user_api="blas"):
        if workers == 1:
            for q0 in starts:
                rerank_chunk(q0)
        else:
            with concurrent.futures.ThreadPoolExecutor(workers) as pool:
                list(pool.map(rerank_chunk, starts))
    return out
