"""faiss IVF-Flat / HNSW against exact search, and their save/load with the id sidecar."""

import numpy as np
import pytest

from delg_tf.retrieval.exact_search import exact_search
from delg_tf.retrieval.faiss_search import FaissIndex
from delg_tf.retrieval.index_loading import load_index


def _clustered(rng, n, d, centers):
    x = centers[rng.integers(0, len(centers), n)] + 0.15 * rng.normal(size=(n, d))
    x = x.astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(200, 64)) / 8.0  # unit-norm centres; 1-probe IVF recall is ~0.6
    return _clustered(rng, 20000, 64, centers), _clustered(rng, 200, 64, centers)


def _recall(found, truth):
    return np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)])


@pytest.mark.parametrize(
    "params", [dict(kind="ivf_flat", nprobe=16), dict(kind="hnsw", hnsw_m=16, ef_search=64)]
)
def test_recall_at_10_against_exact(data, params, tmp_path):
    index, queries = data
    _, truth = exact_search(queries, index, 10)
    built = FaissIndex(**params).build(index, [f"id{i}" for i in range(len(index))])
    scores, found = built.search(queries, 10)
    assert _recall(found, truth) >= 0.95
    assert np.all(np.diff(scores, axis=1) <= 1e-6)
    path = str(tmp_path / "index.faiss")
    built.save(path)
    loaded = load_index(path)
    assert isinstance(loaded, FaissIndex) and loaded.kind == params["kind"]
    assert loaded.ids[:2] == ["id0", "id1"]
    np.testing.assert_array_equal(loaded.search(queries, 10)[1], found)


def test_errors(tmp_path):
    with pytest.raises(ValueError, match="kind"):
        FaissIndex(kind="pq")
    with pytest.raises(ValueError, match="missing or corrupt index sidecar"):
        load_index(str(tmp_path / "nothing.faiss"))
