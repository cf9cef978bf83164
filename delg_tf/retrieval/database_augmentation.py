"""Database-side augmentation (alpha-DBA): every index descriptor averaged with its neighbours.

x_i <- normalise(x_i + sum_{j <= k} max(s_ij, 0)^alpha * x_j) over the k nearest other index
images x_j (Gordo et al., IJCV 2017, with the alpha weights of Radenovic et al., TPAMI 2018).
The neighbours come from a chunked exact search of the index against itself (memory: one
[chunk, index_chunk] score block) or, for large indexes, from a faiss index; the result is written
block by block into a .npy file (memory-mapped), computed once and reused while its JSON sidecar
matches the index and the settings.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from delg_tf.common.atomic_files import write_json_atomically
from delg_tf.retrieval.exact_search import exact_search, iter_row_chunks
from delg_tf.retrieval.neighbour_weights import (
    DEFAULT_ALPHA,
    DEFAULT_K,
    neighbour_weights,
    weighted_neighbour_sum,
)

SEARCH_KINDS = ("exact", "ivf_flat", "hnsw")
SIDECAR_SUFFIX = ".json"


@dataclasses.dataclass(frozen=True)
class DatabaseAugmentationConfig:
    """alpha-DBA settings.

    Attributes:
      k: neighbours added to each index descriptor (0 leaves the index unchanged).
      alpha: exponent of the similarity weights.
      search: neighbour search, "exact" or a faiss kind ("ivf_flat", "hnsw") for large indexes.
    """

    k: int = DEFAULT_K
    alpha: float = DEFAULT_ALPHA
    search: str = "exact"

    def __post_init__(self):
        if self.k < 0:
            raise ValueError(f"DBA k must be >= 0, got {self.k}")
        if not self.alpha >= 0:
            raise ValueError(f"DBA alpha must be >= 0, got {self.alpha}")
        if self.search not in SEARCH_KINDS:
            raise ValueError(f"DBA search must be one of {SEARCH_KINDS}, got {self.search!r}")


def _other_neighbours(rows: np.ndarray, first_row: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Drops each row's own id from its (k + 1) results; returns the first k others [B, k] and
    whether each is a real neighbour [B, k] bool (faiss pads missing results with -1)."""
    self_ids = np.arange(first_row, first_row + rows.shape[0])[:, None]
    keep = (rows != self_ids) & (rows >= 0)
    # Stable: the others keep their order; a row whose own id is missing drops its last result.
    order = np.argsort(~keep, axis=1, kind="stable")[:, :k]
    rows = np.take_along_axis(rows, order, axis=1)
    valid = np.take_along_axis(keep, order, axis=1)
    return np.where(valid, rows, 0), valid


def augment_database(
    index: Any,
    config: DatabaseAugmentationConfig = DatabaseAugmentationConfig(),
    out: np.ndarray | None = None,
    chunk_rows: int = 4096,
) -> np.ndarray:
    """alpha-DBA descriptors of every index image.

    Args:
      index: [N, D] unit-norm index descriptors (array, memmap or `ShardedRows`).
      config: k, alpha and the neighbour search.
      out: optional [N, D] float32 array (e.g. a memmap) to write into.
      chunk_rows: index rows augmented per block.

    Returns:
      [N, D] float32 augmented, unit-norm descriptors (`out` if given). Ties between equally
      similar neighbours go to the lower row, as the exact search orders them.
    """
    n, dim = index.shape
    if out is None:
        out = np.empty((n, dim), np.float32)
    k = min(config.k, n - 1)
    searcher = None
    if k > 0 and config.search != "exact":
        from delg_tf.retrieval.faiss_search import FaissIndex

        searcher = FaissIndex(kind=config.search).build(index)
    for start, block in iter_row_chunks(index, chunk_rows):
        block = np.asarray(block, np.float32)
        if k <= 0:
            out[start : start + block.shape[0]] = block
            continue
        if searcher is None:
            _, rows = exact_search(block, index, k + 1)
        else:
            _, rows = searcher.search(block, k + 1)
        rows, valid = _other_neighbours(rows, start, k)
        unique, inverse = np.unique(rows, return_inverse=True)
        neighbours = np.asarray(index[unique], np.float32)[inverse.reshape(rows.shape)]
        # Weights from the exact inner products (faiss scores of approximate kinds can differ).
        similarities = np.einsum("bd,bkd->bk", block, neighbours)
        weights = neighbour_weights(similarities, config.alpha) * valid
        out[start : start + block.shape[0]] = weighted_neighbour_sum(block, neighbours, weights)
    return out


def _fingerprint(ids: Sequence[str], shape: tuple[int, int], config) -> dict:
    digest = hashlib.sha256("\n".join(ids).encode("utf-8")).hexdigest()
    return {"ids_sha256": digest, "shape": list(shape), "config": dataclasses.asdict(config)}


def load_or_augment(
    index: Any,
    ids: Sequence[str],
    config: DatabaseAugmentationConfig,
    path: str,
    chunk_rows: int = 4096,
) -> tuple[np.ndarray, bool]:
    """The alpha-DBA descriptors cached at `path` (.npy), computed first if missing or stale.

    Args:
      index: [N, D] index descriptors, rows named by `ids`.
      ids: the N image names (the cache is valid only for the same names in the same order).
      config: DBA settings (part of the cache key).
      path: the .npy file; its key is in `path + ".json"`.
      chunk_rows: index rows augmented per block.

    Returns:
      ([N, D] float32 memory-mapped descriptors, whether they were computed now).
    """
    expected = _fingerprint(list(ids), tuple(index.shape), config)
    sidecar = path + SIDECAR_SUFFIX
    if os.path.exists(path) and os.path.exists(sidecar):
        try:
            with open(sidecar, encoding="utf-8") as f:
                if json.load(f) == expected:
                    return np.load(path, mmap_mode="r", allow_pickle=False), False
        except (OSError, ValueError):
            pass  # unreadable cache: recompute it
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    staging = f"{path}.tmp-{os.getpid()}.npy"
    out = np.lib.format.open_memmap(staging, mode="w+", dtype=np.float32, shape=index.shape)
    augment_database(index, config, out, chunk_rows)
    out.flush()
    del out
    os.replace(staging, path)
    write_json_atomically(sidecar, expected, indent=2)
    return np.load(path, mmap_mode="r", allow_pickle=False), True
