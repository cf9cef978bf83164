import numpy as np
import pytest

from delg_tf.extraction.threshold_calibration import (
    choose_threshold,
    feature_counts,
    image_threshold,
)


def test_image_threshold_is_the_target_th_highest_score():
    scores = np.array([5.0, 1.0, 9.0, 7.0, 3.0])
    assert image_threshold(scores, 1) == 9.0
    assert image_threshold(scores, 3) == 5.0
    assert image_threshold(scores, 5) == 1.0
    assert image_threshold(scores, 6) == 0.0  # cannot reach the target
    with pytest.raises(ValueError):
        image_threshold(scores, 0)


def test_median_image_yields_the_target():
    rng = np.random.default_rng(0)
    # Images whose attention levels differ by a factor, as across a real sample.
    images = [
        rng.gamma(2.0, level, size=4000).astype(np.float32) for level in (50, 100, 150, 200, 400)
    ]
    threshold = choose_threshold(images, 1000)
    counts = feature_counts(images, threshold, max_feature_num=1000)
    assert np.median(counts) == 1000
    assert counts[0] < 1000 and counts[-1] == 1000  # weaker images give fewer, cap holds
    uncapped = [int(np.sum(s >= np.float32(threshold))) for s in images]
    assert sorted(uncapped)[2] == 1000  # exactly the target for the median image


def test_hand_built_threshold():
    images = [np.array([1.0, 2.0, 3.0]), np.array([10.0, 20.0, 30.0]), np.array([4.0, 5.0])]
    # target 2: per-image thresholds 2, 20, 4 -> median 4.
    assert choose_threshold(images, 2) == 4.0
    np.testing.assert_array_equal(feature_counts(images, 4.0, 1000), [0, 3, 2])
    np.testing.assert_array_equal(feature_counts(images, 4.0, 2), [0, 2, 2])
