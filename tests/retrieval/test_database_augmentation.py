"""alpha-DBA on a hand-computed 2-D index, its faiss path and its cache."""

import json

import numpy as np
import pytest

from delg_tf.retrieval.database_augmentation import (
    DatabaseAugmentationConfig,
    augment_database,
    load_or_augment,
)

# a, b, c, d; similarities a-b 0.6, a-c 0, a-d -0.6, b-c 0.8, b-d 0.28, c-d 0.8.
INDEX = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [-0.6, 0.8]], np.float32)
IDS = ["a", "b", "c", "d"]


def _unit(v):
    v = np.asarray(v, np.float64)
    return v / np.linalg.norm(v)


# k = 1, alpha = 1: each row plus its nearest other row weighted by their similarity.
EXPECTED = np.array(
    [
        _unit([1.0 + 0.6 * 0.6, 0.6 * 0.8]),  # a + 0.6 b
        _unit([0.6, 0.8 + 0.8]),  # b + 0.8 c
        _unit([0.8 * 0.6, 1.0 + 0.8 * 0.8]),  # c + 0.8 b (tie with d: the lower row)
        _unit([-0.6, 0.8 + 0.8]),  # d + 0.8 c
    ]
)


def test_k1_alpha1_hand_computed_and_the_query_ranking_changes():
    augmented = augment_database(INDEX, DatabaseAugmentationConfig(k=1, alpha=1.0), chunk_rows=3)
    np.testing.assert_allclose(augmented, EXPECTED, atol=1e-6)
    query = np.array([0.8, 0.6], np.float32)
    assert list(np.argsort(-(INDEX @ query), kind="stable")) == [1, 0, 2, 3]  # b, a, c, d
    # After DBA: a 0.954, b 0.843, c 0.801, d 0.281.
    assert list(np.argsort(-(augmented @ query), kind="stable")) == [0, 1, 2, 3]


def test_empty_neighbourhood_keeps_the_descriptor():
    # k = 0; or an image whose neighbours all have similarity <= 0.
    np.testing.assert_array_equal(augment_database(INDEX, DatabaseAugmentationConfig(k=0)), INDEX)
    lonely = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, -1.0]], np.float32)
    out = augment_database(lonely, DatabaseAugmentationConfig(k=1, alpha=3.0))
    np.testing.assert_allclose(out[0], [1.0, 0.0])  # its best other has similarity 0


def test_k_larger_than_the_index_and_faiss_neighbours_agree():
    config = DatabaseAugmentationConfig(k=10, alpha=2.0)
    every = augment_database(INDEX, config)
    np.testing.assert_allclose(every, augment_database(INDEX, DatabaseAugmentationConfig(3, 2.0)))
    hnsw = augment_database(INDEX, DatabaseAugmentationConfig(k=1, alpha=1.0, search="hnsw"))
    np.testing.assert_allclose(hnsw[[0, 1, 3]], EXPECTED[[0, 1, 3]], atol=1e-6)
    # c's two nearest are tied (b and d, 0.8): faiss may take either; the exact search takes b.
    with_d = _unit([-0.8 * 0.6, 1.0 + 0.8 * 0.8])
    assert np.allclose(hnsw[2], EXPECTED[2], atol=1e-6) or np.allclose(hnsw[2], with_d, atol=1e-6)


def test_cache_is_reused_only_for_the_same_index_and_settings(tmp_path):
    path = str(tmp_path / "dba" / "index_dba.npy")
    config = DatabaseAugmentationConfig(k=1, alpha=1.0)
    first, computed = load_or_augment(INDEX, IDS, config, path)
    assert computed
    np.testing.assert_allclose(first, EXPECTED, atol=1e-6)
    again, computed = load_or_augment(INDEX, IDS, config, path)
    assert not computed and isinstance(again, np.memmap)
    assert json.loads((tmp_path / "dba" / "index_dba.npy.json").read_text())["config"]["k"] == 1
    _, computed = load_or_augment(INDEX, IDS, DatabaseAugmentationConfig(k=2), path)
    assert computed  # other settings
    renamed = ["a", "b", "d", "c"]
    _, computed = load_or_augment(INDEX, renamed, DatabaseAugmentationConfig(k=2), path)
    assert computed  # other image names


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="search must be one of"):
        DatabaseAugmentationConfig(search="annoy")
    with pytest.raises(ValueError, match="k must be >= 0"):
        DatabaseAugmentationConfig(k=-3)
