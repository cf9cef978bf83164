"""Receptive-field boxes of a feature map's cells, in the pixels of the image fed to the network.

A cell (i, j) of a feature map with receptive field `size`, `stride` and `padding` sees the input
pixels [stride*i - padding, stride*i - padding + size - 1] along y (likewise x). The official DELG
code hard-codes (291, 32, 145) for its ResNet50; here the numbers come from the backbone itself
(`DelgModel.receptive_field`, computed from its layer graph).
"""

from __future__ import annotations

import tensorflow as tf

from delg_tf.models.receptive_field import ReceptiveField


def receptive_boxes(height: tf.Tensor, width: tf.Tensor, field: ReceptiveField) -> tf.Tensor:
    """Boxes of every cell of an [height, width] feature map, row-major.

    Args:
      height: Feature-map height h (scalar int).
      width: Feature-map width w (scalar int).
      field: The map's receptive field.

    Returns:
      float32 [h * w, 4] boxes (ymin, xmin, ymax, xmax); row k is cell (k // w, k % w).
    """
    rows = tf.range(tf.cast(height, tf.int32))
    cols = tf.range(tf.cast(width, tf.int32))
    grid_y, grid_x = tf.meshgrid(rows, cols, indexing="ij")
    cells = tf.cast(tf.reshape(tf.stack([grid_y, grid_x], axis=-1), [-1, 2]), tf.float32)
    start = cells * float(field.stride) - float(field.padding)
    end = start + (float(field.size) - 1.0)
    return tf.concat([start, end], axis=1)


def box_centers(boxes: tf.Tensor) -> tf.Tensor:
    """Centres of (ymin, xmin, ymax, xmax) boxes.

    Args:
      boxes: [N, 4] float boxes.

    Returns:
      [N, 2] (y, x) centres, the official DELG keypoint locations.
    """
    return (boxes[:, :2] + boxes[:, 2:]) / 2.0
