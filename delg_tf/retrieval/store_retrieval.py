"""Global ranking and per-protocol re-ranking of named queries against feature stores.

The glue `delg-evaluate` needs: names from a ground-truth list are looked up in the stores,
global descriptors are ranked by inner product (as the official `perform_retrieval.py`), and each
query's ranking is re-ranked once per junk set (one per protocol), sharing inlier counts between
protocols because verification of a pair is deterministic (fixed seed).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from delg_tf.extraction.feature_store import FeatureStore
from delg_tf.retrieval.exact_search import similarity_matrix
from delg_tf.retrieval.match_statistics import MatchStatistics
from delg_tf.retrieval.reranking import (
    DEFAULT_CONFIG,
    NUM_TO_RERANK,
    VerificationConfig,
    make_inlier_counter,
    rerank,
)


def store_rows(store: FeatureStore, names: Sequence[str], what: str = "image") -> np.ndarray:
    """Rows of `names` in `store`, [len(names)] int64; a missing name is an error naming it."""
    rows = np.empty(len(names), np.int64)
    for i, name in enumerate(names):
        if name not in store:
            failed = dict(store.failures).get(name)
            raise KeyError(
                f"{what} {name!r} (#{i}) is not in feature store {store.path} "
                + (
                    f"(its extraction failed: {failed})"
                    if failed is not None
                    else f"({len(store)} ids, e.g. {store.ids[:3]})"
                )
            )
        rows[i] = store.index_of(name)
    return rows


def global_ranking(
    query_store: FeatureStore,
    index_store: FeatureStore,
    query_names: Sequence[str],
    index_names: Sequence[str],
) -> tuple[np.ndarray, np.ndarray]:
    """Ranks the index for every query by global-descriptor inner product.

    Returns:
      similarities [Q, N] float32 and ranks [Q, N] int64, both in `index_names` order (ranks hold
      positions in `index_names`, best first; ties by position, like a stable argsort).
    """
    query_rows = store_rows(query_store, query_names, "query")
    index_rows = store_rows(index_store, index_names, "index image")
    queries = query_store.global_descriptors()[query_rows].astype(np.float32)
    view = index_store.global_descriptors()
    if np.array_equal(index_rows, np.arange(len(index_store))):
        similarities = similarity_matrix(queries, view)  # streamed from the memmapped shards
    else:
        similarities = similarity_matrix(queries, view)[:, index_rows]
    ranks = np.argsort(-similarities, axis=1, kind="stable")
    return similarities, ranks


def rerank_queries(
    ranks: np.ndarray,
    similarities: np.ndarray,
    query_features: Callable[[int], Mapping[str, np.ndarray]],
    index_features: Callable[[int], Mapping[str, np.ndarray]],
    junk: Mapping[str, Sequence[np.ndarray]],
    config: VerificationConfig = DEFAULT_CONFIG,
    num_to_rerank: int = NUM_TO_RERANK,
    progress: Callable[[], None] | None = None,
    statistics: MatchStatistics | None = None,
) -> dict[str, np.ndarray]:
    """Geometric re-ranking of every query, once per junk set.

    Args:
      ranks: [Q, N] global ranks (index positions, best first).
      similarities: [Q, N] global similarity per index position.
      query_features: query number -> local features dict (descriptors, locations).
      index_features: index position -> local features dict.
      junk: {name: per-query junk index positions}, e.g. {"medium": [...], "hard": [...]}.
      config: matching and RANSAC settings.
      num_to_rerank: images verified per query and junk set.
      progress: called once per finished query.
      statistics: if given, receives every verified pair's putative and inlier counts.

    Returns:
      {name: [Q, N] re-ranked ranks}.
    """
    out = {name: np.empty_like(ranks) for name in junk}
    for q in range(ranks.shape[0]):
        query = query_features(q)
        on_pair = None
        if statistics is not None:
            num_features = len(query["descriptors"])

            def on_pair(_, putative, inliers, q=q, n=num_features):
                statistics.record(q, n, putative, inliers)

        counter = make_inlier_counter(query, index_features, config, on_pair)
        for name, per_query in junk.items():
            out[name][q], _ = rerank(
                ranks[q], similarities[q], counter, per_query[q], num_to_rerank
            )
        if progress is not None:
            progress()
    return out


def local_features_by_position(
    store: FeatureStore, names: Sequence[str], what: str = "image"
) -> Callable[[int], dict[str, np.ndarray]]:
    """position in `names` -> that image's local features from `store` (ids checked up front)."""
    if store.local_dim is None:
        raise ValueError(f"feature store {store.path} has no local features")
    store_rows(store, names, what)
    return lambda position: store.local_features(names[position])
