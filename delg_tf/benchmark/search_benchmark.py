"""Global search speed and recall: exact (chunked matmul) against faiss, on clustered descriptors.

Uniform random vectors make approximate search meaningless (every neighbour is nearly as far as
every other), so `clustered_descriptors` draws L2-normalised points around random cluster centres
(landmarks), each cluster with its own spread: a query's 100 nearest neighbours are then a
well-defined set of its cluster's members, ranked by small but real similarity differences.

`benchmark_search` times `ExactIndex` (the ground truth) and `FaissIndex` builds and searches on
the same index, and reports recall@k of faiss against the exact top-k for each search setting.
The index may be held as float16 (half the memory; exact search converts one block at a time).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from statistics import median
from typing import Any

import numpy as np

from delg_tf.retrieval.exact_search import ExactIndex

_GENERATION_CHUNK = 16384  # rows drawn at once: 128 MB of float32 at 2048-D


def clustered_descriptors(
    num_rows: int,
    dim: int = 2048,
    num_clusters: int | None = None,
    seed: int = 0,
    dtype: Any = np.float32,
    centres_seed: int = 1234,
) -> np.ndarray:
    """[num_rows, dim] L2-normalised descriptors around random cluster centres.

    Row i = normalize(centre[c_i] + s_c * g_i / sqrt(dim)), c_i uniform over clusters, s_c (the
    cluster's spread) uniform in [0.6, 1.2], g_i standard normal. Generated in chunks, so the
    float32 peak beyond the result is one chunk.

    Args:
      num_rows: rows.
      dim: dimension.
      num_clusters: clusters (default num_rows // 1000, at least 8: ~1000 members each, so the
        100 nearest neighbours of a query lie in its own cluster).
      seed: seed of the rows (use different seeds for index and queries).
      dtype: result dtype (float16 halves memory).
      centres_seed: seed of the centres and spreads (shared by index and queries).
    """
    if num_clusters is None:
        num_clusters = max(8, num_rows // 1000)
    centre_rng = np.random.default_rng(centres_seed)
    centres = centre_rng.standard_normal((num_clusters, dim), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    spreads = centre_rng.uniform(0.6, 1.2, num_clusters).astype(np.float32) / np.sqrt(dim)
    rng = np.random.default_rng(seed)
    out = np.empty((num_rows, dim), dtype)
    for start in range(0, num_rows, _GENERATION_CHUNK):
        rows = min(_GENERATION_CHUNK, num_rows - start)
        clusters = rng.integers(0, num_clusters, rows)
        block = rng.standard_normal((rows, dim), dtype=np.float32)
        block *= spreads[clusters, None]
        block += centres[clusters]
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start : start + rows] = block
    return out


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean over queries of |found_q ∩ truth_q| / |truth_q| ([Q, k] row indices each)."""
    if found.shape[0] != truth.shape[0]:
        raise ValueError(f"found has {found.shape[0]} queries, truth {truth.shape[0]}")
    hits = [np.intersect1d(f[f >= 0], t).size / t.size for f, t in zip(found, truth, strict=True)]
    return float(np.mean(hits))


@dataclasses.dataclass
class SearchSetting:
    """One timed search configuration.

    Attributes:
      name: e.g. "exact", "ivf_flat nprobe=32", "hnsw ef_search=128".
      seconds: wall time of each run over all queries.
      num_queries: queries per run.
      recall: recall@k against exact search (1.0 for exact itself).
      build_seconds: time to build the index (0 for exact: it keeps a reference).
      memory_bytes: bytes the index holds (descriptors, lists, graph), estimated.
      index_params: how the index was built (e.g. "nlist=1264, trained on 100000 rows").
    """

    name: str
    seconds: list[float]
    num_queries: int
    recall: float
    build_seconds: float = 0.0
    memory_bytes: int = 0
    index_params: str = ""

    @property
    def queries_per_second_runs(self) -> list[float]:
        return [self.num_queries / s for s in self.seconds]

    @property
    def queries_per_second(self) -> float:
        return median(self.queries_per_second_runs)


def _timed_search(index, queries: np.ndarray, k: int, runs: int):
    seconds, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = index.search(queries, k)
        seconds.append(time.perf_counter() - start)
    return seconds, result


def faiss_index_bytes(kind: str, num_rows: int, dim: int, nlist: int = 0, hnsw_m: int = 32) -> int:
    """Estimated RAM of a faiss flat-storage index: float32 vectors + ids / graph links."""
    vectors = num_rows * dim * 4
    if kind == "hnsw":
        return vectors + num_rows * hnsw_m * 2 * 4  # level-0 links dominate
    return vectors + num_rows * 8 + nlist * dim * 4  # vectors, int64 ids, centroids


def benchmark_search(
    index_descriptors: np.ndarray,
    queries: np.ndarray,
    k: int = 100,
    runs: int = 3,
    faiss_configs: Sequence[tuple[str, dict, str, Sequence[int]]] = (),
) -> list[SearchSetting]:
    """Times exact search, then each faiss index over its search settings, with recall@k.

    Args:
      index_descriptors: [N, D] (float32 or float16; not copied by exact search).
      queries: [Q, D] float32.
      k: neighbours per query.
      runs: timed runs per setting (median reported).
      faiss_configs: (kind, FaissIndex kwargs, swept attribute, values), e.g.
        ("ivf_flat", {"nlist": None}, "nprobe", [8, 16, 32]). Each index is built once
        (timed), searched with every value, then freed.

    Returns:
      One `SearchSetting` for exact search, then one per (faiss config, value).
    """
    num_rows, dim = index_descriptors.shape
    exact = ExactIndex().build(index_descriptors)
    exact.search(queries[:8], k)  # warm-up (BLAS threads, first-call costs)
    seconds, (_, truth) = _timed_search(exact, queries, k, runs)
    held = index_descriptors.nbytes
    settings = [SearchSetting("exact", seconds, len(queries), 1.0, 0.0, held)]
    if not faiss_configs:
        return settings
    from delg_tf.retrieval.faiss_search import FaissIndex  # imports faiss

    for kind, kwargs, attribute, values in faiss_configs:
        index = FaissIndex(kind=kind, **kwargs)
        start = time.perf_counter()
        index.build(index_descriptors)
        build_seconds = time.perf_counter() - start
        memory = faiss_index_bytes(kind, num_rows, dim, index.nlist or 0, index.hnsw_m)
        if kind == "hnsw":
            params = f"M={index.hnsw_m}, efConstruction={index.ef_construction}"
        else:
            params = f"nlist={index.nlist}, trained on {min(num_rows, index.train_size)} rows"
        for value in values:
            setattr(index, attribute, value)
            index.search(queries[:8], k)
            seconds, (_, found) = _timed_search(index, queries, k, runs)
            settings.append(
                SearchSetting(
                    f"{kind} {attribute}={value}",
                    seconds,
                    len(queries),
                    recall_at_k(found, truth),
                    build_seconds,
                    memory,
                    params,
                )
            )
        del index
    return settings
