"""Loads a saved global-search index of either kind, dispatching on its sidecar."""

from __future__ import annotations

from delg_tf.retrieval.search_index import SIDECAR_SUFFIX, SearchIndex, read_sidecar


def load_index(path: str) -> SearchIndex:
    """Loads an exact or faiss index saved by `SearchIndex.save`, dispatching on its sidecar."""
    kind = read_sidecar(path)["kind"]
    if kind == "exact":
        from delg_tf.retrieval.exact_search import ExactIndex

        return ExactIndex.load(path)
    from delg_tf.retrieval.faiss_search import FAISS_KINDS, FaissIndex

    if kind in FAISS_KINDS:
        return FaissIndex.load(path)
    raise ValueError(f"{path + SIDECAR_SUFFIX}: unknown index kind {kind!r}")
