import numpy as np
import pytest

from delg_tf.benchmark.search_benchmark import (
    benchmark_search,
    clustered_descriptors,
    faiss_index_bytes,
    recall_at_k,
)


def test_recall_at_k_counts_the_overlap_per_query():
    truth = np.array([[0, 1, 2, 3], [4, 5, 6, 7]])
    found = np.array([[3, 2, 9, 8], [4, 5, 6, -1]])  # -1: faiss found fewer than k
    assert recall_at_k(found, truth) == pytest.approx((2 / 4 + 3 / 4) / 2)
    with pytest.raises(ValueError, match="1 queries"):
        recall_at_k(found[:1], truth)


def test_clustered_descriptors_are_unit_deterministic_and_clustered():
    a = clustered_descriptors(3000, dim=64, num_clusters=10, seed=0, dtype=np.float16)
    b = clustered_descriptors(3000, dim=64, num_clusters=10, seed=0, dtype=np.float16)
    assert a.dtype == np.float16 and a.shape == (3000, 64)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(np.linalg.norm(a.astype(np.float32), axis=1), 1.0, atol=2e-3)
    # Clustered, not uniform: every row has a neighbour far closer than a random row
    # (cluster members have cosine ~0.5, unrelated rows ~0 at 64-D).
    x = a[:200].astype(np.float32)
    sims = x @ a.astype(np.float32).T
    sims[np.arange(200), np.arange(200)] = -1
    assert np.median(sims.max(axis=1)) > 0.4
    assert abs(np.median(sims)) < 0.2
    other = clustered_descriptors(100, dim=64, num_clusters=10, seed=1)
    assert not np.allclose(other, a[:100].astype(np.float32), atol=0.1)


def test_exact_is_its_own_truth_and_exhaustive_ivf_recalls_everything():
    index = clustered_descriptors(2000, dim=32, num_clusters=8, seed=0)
    queries = clustered_descriptors(20, dim=32, num_clusters=8, seed=1)
    settings = benchmark_search(
        index, queries, k=10, runs=2, faiss_configs=[("ivf_flat", {"nlist": 4}, "nprobe", [4])]
    )
    exact, ivf = settings
    assert exact.name == "exact" and exact.recall == 1.0 and len(exact.seconds) == 2
    assert exact.memory_bytes == index.nbytes
    # nprobe = nlist visits every list: the same top-10 as exact search.
    assert ivf.name == "ivf_flat nprobe=4" and ivf.recall == pytest.approx(1.0)
    assert ivf.build_seconds > 0 and ivf.num_queries == 20
    assert ivf.memory_bytes == faiss_index_bytes("ivf_flat", 2000, 32, 4)
    assert faiss_index_bytes("ivf_flat", 10**6, 2048, 4000) > 8 * 10**9
