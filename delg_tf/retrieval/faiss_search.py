"""Approximate inner-product search with faiss: IVF-Flat and HNSW.

Descriptors are added in float32 blocks, so a `ShardedRows` view of a feature store is streamed
into the index (faiss itself then holds N x D float32 in memory: 8 GB for 1M x 2048).
"""

from __future__ import annotations

from typing import Any

import faiss
import numpy as np

from delg_tf.retrieval.search_index import (
    SearchIndex,
    iter_row_chunks,
    read_sidecar,
    write_sidecar,
)

FAISS_KINDS = ("ivf_flat", "hnsw")


class FaissIndex(SearchIndex):
    """faiss index with inner-product metric.

    Args:
      kind: "ivf_flat" or "hnsw".
      nlist: IVF lists; None means about 4 * sqrt(N).
      nprobe: IVF lists visited per query.
      hnsw_m: HNSW graph degree.
      ef_construction, ef_search: HNSW beam widths when building / searching.
      train_size: IVF k-means training sample (rows taken evenly over the index).
      add_chunk: rows converted to float32 and added per step.
      seed: k-means seed.
    """

    def __init__(
        self,
        kind: str = "ivf_flat",
        nlist: int | None = None,
        nprobe: int = 32,
        hnsw_m: int = 32,
        ef_construction: int = 80,
        ef_search: int = 128,
        train_size: int = 100_000,
        add_chunk: int = 65536,
        seed: int = 0,
    ):
        if kind not in FAISS_KINDS:
            raise ValueError(f"faiss index kind must be one of {FAISS_KINDS}, got {kind!r}")
        self.kind = kind
        self.nlist = nlist
        self.nprobe = nprobe
        self.hnsw_m = hnsw_m
        self.ef_construction = ef_construction
        self.ef_search = ef_search
        self.train_size = train_size
        self.add_chunk = add_chunk
        self.seed = seed
        self.index: faiss.Index | None = None
        self.ids: list[str] | None = None

    def _params(self) -> dict:
        return {
            "kind": self.kind,
            "nlist": self.nlist,
            "nprobe": self.nprobe,
            "hnsw_m": self.hnsw_m,
            "ef_construction": self.ef_construction,
            "ef_search": self.ef_search,
            "train_size": self.train_size,
            "add_chunk": self.add_chunk,
            "seed": self.seed,
        }

    def build(self, descriptors: Any, ids: list[str] | None = None) -> FaissIndex:
        """Trains (IVF) and fills the index from [N, D] descriptors."""
        n, dim = descriptors.shape
        if ids is not None and len(ids) != n:
            raise ValueError(f"{len(ids)} ids for {n} descriptors")
        if n == 0:
            raise ValueError("cannot build a faiss index from 0 descriptors")
        if self.kind == "hnsw":
            index = faiss.IndexHNSWFlat(dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = self.ef_construction
        else:
            if self.nlist is None:
                self.nlist = int(max(1, min(n // 39, 4 * round(np.sqrt(n)))))
            quantizer = faiss.IndexFlatIP(dim)
            index = faiss.IndexIVFFlat(quantizer, dim, self.nlist, faiss.METRIC_INNER_PRODUCT)
            index.cp.seed = self.seed
            sample_rows = np.unique(np.linspace(0, n - 1, min(n, self.train_size)).astype(np.int64))
            sample = np.ascontiguousarray(descriptors[sample_rows], dtype=np.float32)
            index.train(sample)
        for _, block in iter_row_chunks(descriptors, self.add_chunk):
            index.add(np.ascontiguousarray(block, dtype=np.float32))
        self.index = index
        self.ids = None if ids is None else list(ids)
        self._apply_search_params()
        return self

    def _apply_search_params(self) -> None:
        if self.kind == "hnsw":
            self.index.hnsw.efSearch = self.ef_search
        else:
            self.index.nprobe = self.nprobe

    def __len__(self) -> int:
        return 0 if self.index is None else self.index.ntotal

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self.index is None:
            raise RuntimeError("FaissIndex.search called before build()")
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if queries.ndim != 2 or queries.shape[1] != self.index.d:
            raise ValueError(f"queries have shape {queries.shape}, index dimension {self.index.d}")
        self._apply_search_params()
        scores, indices = self.index.search(queries, int(min(k, self.index.ntotal)))
        return scores, indices.astype(np.int64)

    def save(self, path: str) -> None:
        """Writes the faiss index to `path` and {kind, params, ids} to `path + '.json'`."""
        if self.index is None:
            raise RuntimeError("FaissIndex.save called before build()")
        faiss.write_index(self.index, path)
        write_sidecar(path, self.kind, self.ids, self._params())

    @classmethod
    def load(cls, path: str) -> FaissIndex:
        meta = read_sidecar(path)
        if meta["kind"] not in FAISS_KINDS:
            raise ValueError(f"{path}.json: not a faiss index (kind {meta['kind']!r})")
        try:
            raw = faiss.read_index(path)
        except RuntimeError as e:
            raise ValueError(f"{path}: cannot read faiss index ({e})") from e
        obj = cls(**meta["params"])
        obj.index = raw
        obj.ids = meta["ids"]
        if obj.ids is not None and len(obj.ids) != raw.ntotal:
            raise ValueError(f"{path}.json: {len(obj.ids)} ids for an index of {raw.ntotal}")
        obj._apply_search_params()
        return obj
