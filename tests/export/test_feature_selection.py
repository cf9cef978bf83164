import numpy as np
import tensorflow as tf

from delg_tf.export.feature_selection import threshold_indices, top_k_indices


def test_threshold_keeps_equal_scores():
    scores = tf.constant([1.0, 5.0, 4.9, 5.0, 7.0])
    np.testing.assert_array_equal(threshold_indices(scores, 5.0).numpy(), [1, 3, 4])


def test_threshold_above_all_is_empty():
    assert threshold_indices(tf.constant([1.0, 2.0]), 3.0).shape == (0,)


def test_top_k_sorted_by_score_ties_in_input_order():
    scores = tf.constant([3.0, 9.0, 3.0, 7.0, 1.0])
    np.testing.assert_array_equal(top_k_indices(scores, 4).numpy(), [1, 3, 0, 2])


def test_top_k_larger_than_n_and_negative():
    scores = tf.constant([2.0, 1.0])
    np.testing.assert_array_equal(top_k_indices(scores, 1000).numpy(), [0, 1])
    assert top_k_indices(scores, -1).shape == (0,)
    assert top_k_indices(tf.zeros([0]), 5).shape == (0,)
