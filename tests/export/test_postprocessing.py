import numpy as np
import tensorflow as tf

from delg_tf.export.postprocessing import (
    aggregate_global_descriptors,
    keypoint_locations,
    normalize_local_descriptors,
)


def test_global_aggregation_l2_sum_l2():
    # Scale 0 has a large norm; without per-scale normalisation it would dominate the sum.
    per_scale = tf.constant([[30.0, 40.0, 0.0], [0.0, 0.0, 2.0]])
    # Per-scale L2: [0.6, 0.8, 0], [0, 0, 1]; sum [0.6, 0.8, 1]; norm sqrt(2).
    expected = np.array([0.6, 0.8, 1.0]) / np.sqrt(2.0)
    np.testing.assert_allclose(aggregate_global_descriptors(per_scale).numpy(), expected, 1e-6)


def test_local_descriptors_unit_norm():
    out = normalize_local_descriptors(tf.constant([[3.0, 4.0], [0.0, -2.0]])).numpy()
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, -1.0]], atol=1e-7)


def test_keypoints_are_box_centres_divided_by_resize_factor():
    boxes = tf.constant([[-145.0, -113.0, 145.0, 177.0]])
    np.testing.assert_array_equal(keypoint_locations(boxes).numpy(), [[0.0, 32.0]])
    located = keypoint_locations(boxes, tf.constant([0.5, 0.25])).numpy()
    np.testing.assert_array_equal(located, [[0.0, 128.0]])
