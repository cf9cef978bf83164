"""Alpha query expansion (alpha-QE, Radenovic, Tolias, Chum, TPAMI 2018).

The query descriptor q is replaced by normalise(q + sum_{j <= k} max(s_j, 0)^alpha * x_j) over its
top-k results x_j (similarity s_j = <q, x_j>), and the index is searched again with it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from delg_tf.retrieval.neighbour_weights import (
    DEFAULT_ALPHA,
    DEFAULT_K,
    neighbour_weights,
    weighted_neighbour_sum,
)


@dataclasses.dataclass(frozen=True)
class QueryExpansionConfig:
    """alpha-QE settings.

    Attributes:
      k: top results added to the query (0 leaves it unchanged).
      alpha: exponent of the similarity weights (3 in Radenovic et al.).
    """

    k: int = DEFAULT_K
    alpha: float = DEFAULT_ALPHA

    def __post_init__(self):
        if self.k < 0:
            raise ValueError(f"alpha-QE k must be >= 0, got {self.k}")
        if not self.alpha >= 0:
            raise ValueError(f"alpha-QE alpha must be >= 0, got {self.alpha}")


def expand_queries(
    queries: np.ndarray,
    index: Any,
    ranks: np.ndarray,
    config: QueryExpansionConfig = QueryExpansionConfig(),
) -> np.ndarray:
    """alpha-QE descriptors of every query.

    Args:
      queries: [Q, D] unit-norm query descriptors.
      index: [N, D] index descriptors (array, memmap or `ShardedRows`; only the rows of the
        queries' top-k are read).
      ranks: [Q, >=k] index rows of each query's ranking, best first.
      config: k and alpha.

    Returns:
      [Q, D] float32 expanded, unit-norm query descriptors.
    """
    queries = np.asarray(queries, np.float32)
    k = min(config.k, ranks.shape[1])
    if k == 0:
        return queries.copy()
    top = np.asarray(ranks[:, :k], np.int64)
    rows, inverse = np.unique(top, return_inverse=True)
    neighbours = np.asarray(index[rows], np.float32)[inverse.reshape(top.shape)]  # [Q, k, D]
    similarities = np.einsum("qd,qkd->qk", queries, neighbours)
    weights = neighbour_weights(similarities, config.alpha)
    return weighted_neighbour_sum(queries, neighbours, weights)
