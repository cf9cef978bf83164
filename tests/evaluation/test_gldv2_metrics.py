"""Tests for the GLDv2 recognition/retrieval metrics on hand-computed cases."""

import math

import numpy as np
import pytest

from delg_tf.evaluation import gldv2_metrics as m
from delg_tf.evaluation.gldv2_io import RecognitionPrediction as P

# The fixtures of the official research/delf/delf/python/datasets/google_landmarks_dataset/
# metrics_test.py, with their published expected values.
RECOGNITION_SOLUTION = {
    "0123456789abcdef": [0, 12],
    "0223456789abcdef": [100, 200, 300],
    "0323456789abcdef": [1],
    "0423456789abcdef": [],
    "0523456789abcdef": [],
}
RECOGNITION_PREDICTIONS = {
    "0223456789abcdef": P(0, 0.01),
    "0323456789abcdef": P(1, 10.0),
    "0423456789abcdef": P(150, 15.0),
}
RETRIEVAL_SOLUTION = {
    "0123456789abcdef": ["fedcba9876543210", "fedcba9876543220"],
    "0223456789abcdef": ["fedcba9876543210"],
    "0323456789abcdef": ["fedcba9876543230", "fedcba9876543240", "fedcba9876543250"],
    "0423456789abcdef": ["fedcba9876543230"],
}
RETRIEVAL_PREDICTIONS = {
    "0223456789abcdef": ["fedcba9876543200", "fedcba9876543210"],
    "0323456789abcdef": ["fedcba9876543240"],
    "0423456789abcdef": ["fedcba9876543230", "fedcba9876543240"],
}


def test_gap_official_anchor():
    # Sorted: 04 (15.0, wrong: 0/1), 03 (10.0, right: 1/2), 02 (0.01, wrong).
    # 3 images have ground truth: GAP = (1/2) / 3.
    gap = m.global_average_precision(RECOGNITION_PREDICTIONS, RECOGNITION_SOLUTION)
    assert gap == pytest.approx(0.166667, abs=1e-6)


def test_gap_ignoring_non_landmarks_official_anchor():
    # 04 has no ground truth and is skipped: 03 right at 1/1, 02 wrong -> 1/3.
    gap = m.global_average_precision(
        RECOGNITION_PREDICTIONS, RECOGNITION_SOLUTION, ignore_non_gt_test_images=True
    )
    assert gap == pytest.approx(0.333333, abs=1e-6)


def test_top1_official_anchor():
    # 01, 02, 03 have ground truth; only 03 is right.
    accuracy = m.top1_accuracy(RECOGNITION_PREDICTIONS, RECOGNITION_SOLUTION)
    assert accuracy == pytest.approx(1 / 3)


def test_gap_ties_break_by_test_id_ascending():
    # Equal scores: 'a' sorts first. 'a' wrong (precision 0/1), then 'b' right (1/2);
    # two images with ground truth -> GAP = (1/2) / 2 = 0.25.
    solution = {"a": [1], "b": [2]}
    assert m.global_average_precision({"a": P(9, 0.5), "b": P(2, 0.5)}, solution) == 0.25
    # Swap which one is right: 'a' right at 1/1, 'b' wrong -> GAP = 1 / 2 = 0.5.
    assert m.global_average_precision({"a": P(1, 0.5), "b": P(9, 0.5)}, solution) == 0.5
    # Scores beat ids: 'b' has the higher score and goes first (right: 1/1), 'a' wrong -> 0.5.
    assert m.global_average_precision({"a": P(9, 0.4), "b": P(2, 0.5)}, solution) == 0.5


def test_gap_counts_images_without_predictions():
    # 4 images with ground truth, one correct prediction at the top: GAP = 1/4.
    solution = {"a": [1], "b": [2], "c": [3], "d": [4]}
    assert m.global_average_precision({"c": P(3, 0.9)}, solution) == 0.25
    assert m.top1_accuracy({"c": P(3, 0.9)}, solution) == 0.25


def test_gap_without_any_ground_truth_is_nan():
    assert math.isnan(m.global_average_precision({"a": P(1, 1.0)}, {"a": []}))
    assert math.isnan(m.top1_accuracy({}, {"a": []}))


def test_gap_rejects_unknown_test_id():
    with pytest.raises(ValueError, match="'zzz'"):
        m.global_average_precision({"zzz": P(1, 1.0)}, {"a": [1]})


def test_map_official_anchor():
    # 01: no prediction -> 0. 02: hit at position 2 -> (1/2) / min(1, 100) = 0.5.
    # 03: hit at 1 -> (1/1) / 3. 04: hit at 1 -> 1. Mean over 4: (0.5 + 1/3 + 1) / 4.
    mean_ap = m.mean_average_precision(RETRIEVAL_PREDICTIONS, RETRIEVAL_SOLUTION)
    assert mean_ap == pytest.approx(0.458333, abs=1e-6)


def test_map_max_predictions_official_anchor():
    # Only position 1 counts: 02 -> 0, 03 -> 1/min(3, 1) = 1, 04 -> 1. Mean (0+1+1)/4 = 0.5.
    mean_ap = m.mean_average_precision(RETRIEVAL_PREDICTIONS, RETRIEVAL_SOLUTION, max_predictions=1)
    assert mean_ap == pytest.approx(0.5)


def test_mean_precisions_official_anchor():
    # P@1: 02 0, 03 1, 04 1, 01 0 -> 0.5. P@2: 02 1/2, 03 1/2 (short list), 04 1/2, 01 0 -> 0.375.
    precisions = m.mean_precisions(RETRIEVAL_PREDICTIONS, RETRIEVAL_SOLUTION, max_predictions=2)
    np.testing.assert_allclose(precisions, [0.5, 0.375])


def test_mean_median_position_official_anchor():
    # First correct: 01 none -> 101, 02 -> 2, 03 -> 1, 04 -> 1. Mean 105/4, median 1.5.
    mean, median = m.mean_median_position(RETRIEVAL_PREDICTIONS, RETRIEVAL_SOLUTION)
    assert (mean, median) == (26.25, 1.5)
    # max_predictions=1: 01 -> 2, 02 -> 2 (its hit is at 2), 03 -> 1, 04 -> 1.
    mean, median = m.mean_median_position(
        RETRIEVAL_PREDICTIONS, RETRIEVAL_SOLUTION, max_predictions=1
    )
    assert (mean, median) == (1.5, 1.5)


def test_map_duplicates_keep_their_position_but_earn_nothing():
    # [x, x, y] with relevant {x, y}: hits at positions 1 and 3 -> (1/1 + 2/3) / 2 = 5/6.
    solution = {"q": ["x", "y"]}
    assert m.mean_average_precision({"q": ["x", "x", "y"]}, solution) == pytest.approx(5 / 6)
    # P@1 = 1, P@2 = 1/2 (the duplicate is not a second hit), P@3 = 2/3.
    np.testing.assert_allclose(
        m.mean_precisions({"q": ["x", "x", "y"]}, solution, max_predictions=3), [1, 0.5, 2 / 3]
    )


def test_map_divides_by_min_relevant_and_100():
    # 150 relevant images, the first 100 predictions all relevant: AP = 100 / min(150, 100) = 1.
    relevant = [f"r{i}" for i in range(150)]
    assert m.mean_average_precision({"q": relevant[:100]}, {"q": relevant}) == 1.0
    # Hits beyond position 100 do not count: 100 wrong then 50 right -> 0.
    wrong = [f"w{i}" for i in range(100)]
    assert m.mean_average_precision({"q": wrong + relevant}, {"q": relevant}) == 0.0


def test_map_missing_and_empty_predictions_count_zero():
    # q1 perfect (1), q2 no prediction (0), q3 empty list (0): mean 1/3.
    solution = {"q1": ["a"], "q2": ["b"], "q3": ["c"]}
    assert m.mean_average_precision({"q1": ["a"], "q3": []}, solution) == pytest.approx(1 / 3)
    mean, median = m.mean_median_position({"q1": ["a"], "q3": []}, solution)
    assert (mean, median) == pytest.approx(((1 + 101 + 101) / 3, 101))


def test_map_query_without_relevant_images_scores_zero():
    assert m.mean_average_precision({"q": ["a"]}, {"q": [], "p": ["a"]}) == 0.0


def test_precision_at_reported_ranks():
    # One query, 10 relevant predictions then wrong ones: P@1=P@5=P@10=1, P@50=10/50, P@100=0.1.
    relevant = [f"r{i}" for i in range(10)]
    prediction = relevant + [f"w{i}" for i in range(90)]
    precisions = m.mean_precisions({"q": prediction}, {"q": relevant})
    at = [precisions[k - 1] for k in m.PRECISION_RANKS]
    np.testing.assert_allclose(at, [1, 1, 1, 0.2, 0.1])


def test_empty_solution_is_nan():
    assert math.isnan(m.mean_average_precision({}, {}))
    assert np.isnan(m.mean_precisions({}, {}, max_predictions=3)).all()
