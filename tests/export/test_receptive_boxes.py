import numpy as np
import tensorflow as tf

from delg_tf.export.receptive_boxes import box_centers, receptive_boxes
from delg_tf.models.receptive_field import ReceptiveField


def test_official_anchor_1x2_map():
    # The values the official export hard-codes (`export_local_and_global_model.py`):
    # rf 291, stride 32, padding 145.
    boxes = receptive_boxes(1, 2, ReceptiveField(size=291, stride=32, padding=145))
    np.testing.assert_array_equal(boxes.numpy(), [[-145, -145, 145, 145], [-145, -113, 145, 177]])


def test_row_major_order_and_centres():
    boxes = receptive_boxes(tf.constant(2), tf.constant(3), ReceptiveField(291, 32, 145))
    centres = box_centers(boxes).numpy()
    expected = [[32 * i, 32 * j] for i in range(2) for j in range(3)]
    np.testing.assert_array_equal(centres, expected)


def test_non_symmetric_field():
    boxes = receptive_boxes(2, 1, ReceptiveField(size=10, stride=4, padding=2)).numpy()
    np.testing.assert_array_equal(boxes, [[-2, -2, 7, 7], [2, -2, 11, 7]])
