"""Affine RANSAC: known transforms under outliers, skimage agreement, degenerate samples."""

import numpy as np
import pytest
from skimage import measure, transform

from delg_tf.retrieval.ransac import dynamic_max_trials, ransac_affine

AFFINE = np.array([[1.1, 0.2, 30.0], [-0.1, 0.9, -12.0], [0.0, 0.0, 1.0]])


def _apply(model, points):
    return points @ model[:2, :2].T + model[:2, 2]


def _data(rng, n, outlier_fraction, noise=0.5):
    src = rng.uniform(0, 800, (n, 2))
    dst = _apply(AFFINE, src) + rng.normal(scale=noise, size=(n, 2))
    outliers = rng.permutation(n)[: int(n * outlier_fraction)]
    dst[outliers] = rng.uniform(0, 800, (len(outliers), 2))
    truth = np.ones(n, bool)
    truth[outliers] = False
    return src, dst, truth


def test_recovers_known_affine_with_half_outliers():
    src, dst, truth = _data(np.random.default_rng(0), 200, 0.5)
    result = ransac_affine(src, dst, residual_threshold=20.0, seed=0)
    # Outliers landing within 20 px of the model by chance are inliers too, so compare to that.
    expected = np.linalg.norm(_apply(AFFINE, src) - dst, axis=1) < 20.0
    assert truth.sum() == 100 and expected[truth].all()
    np.testing.assert_array_equal(result.inliers, expected)
    assert result.num_inliers == expected.sum()
    np.testing.assert_allclose(result.model, AFFINE, atol=0.02 * 30)
    np.testing.assert_allclose(result.model[:2, :2], AFFINE[:2, :2], atol=0.01)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_inlier_counts_agree_with_skimage_on_clean_data(seed):
    rng = np.random.default_rng(seed)
    src, dst, _ = _data(rng, 150, 0.3, noise=1.0)
    ours = ransac_affine(src, dst, residual_threshold=20.0, max_trials=1000, seed=0)
    _, sk_inliers = measure.ransac(
        (src, dst),
        transform.AffineTransform,
        min_samples=3,
        residual_threshold=20,
        max_trials=1000,
        rng=0,
    )
    assert ours.num_inliers == int(sk_inliers.sum())
    np.testing.assert_array_equal(ours.inliers, sk_inliers)


def test_adaptive_stop_matches_skimage_formula():
    # skimage: ceil(log(1 - p) / log(1 - w^3)), p clipped to 1 - eps; 0 inliers -> inf.
    np.testing.assert_array_equal(dynamic_max_trials([50], 100, 3, 0.99), [35])
    assert dynamic_max_trials([50], 100, 3, 1.0)[0] == 270
    assert dynamic_max_trials([0], 100, 3, 0.99)[0] == np.inf
    src, dst, _ = _data(np.random.default_rng(3), 100, 0.0)
    assert ransac_affine(src, dst, seed=0).num_trials == 1  # all inliers: bound is 1 trial
    src, dst, _ = _data(np.random.default_rng(4), 100, 1.0)
    assert ransac_affine(src, dst, max_trials=300, seed=0).num_trials <= 300


def test_collinear_samples_are_skipped():
    # Everything on one line: every 3-sample is degenerate, so there is no model.
    src = np.stack([np.arange(10.0), 2 * np.arange(10.0)], 1)
    result = ransac_affine(src, src + 5, max_trials=50, seed=0)
    assert result.model is None and result.num_inliers == 0 and result.num_trials == 50
    # One point off the line: only samples using it are valid; they find all 11 points.
    src = np.concatenate([src, [[0.0, 50.0]]])
    result = ransac_affine(src, src + 5, max_trials=1000, seed=0)
    assert result.num_inliers == 11
    np.testing.assert_allclose(result.model[:2, 2], [5, 5], atol=1e-6)


def test_seeded_and_validated():
    src, dst, _ = _data(np.random.default_rng(5), 80, 0.6)
    a, b = ransac_affine(src, dst, seed=7), ransac_affine(src, dst, seed=7)
    np.testing.assert_array_equal(a.inliers, b.inliers)
    with pytest.raises(ValueError, match="at least 3"):
        ransac_affine(src[:2], dst[:2])
    with pytest.raises(ValueError, match=r"\[N, 2\]"):
        ransac_affine(src, dst[:, :1])
