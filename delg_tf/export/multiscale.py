"""The image pyramid: one network run per scale, giving both local and global features.

Global scales are indices into the local scales, so an image scale used by both heads runs the
network once (the official export does the same: `input_global_scales_ind`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import tensorflow as tf

from delg_tf.export.feature_selection import threshold_indices, top_k_indices
from delg_tf.export.receptive_boxes import receptive_boxes
from delg_tf.models.receptive_field import ReceptiveField

# image [1, h, w, 3] float (normalised) -> (global [1, D], attention [1, h', w', 1],
# local descriptors [1, h', w', d]).
ModelFn = Callable[[tf.Tensor], tuple[tf.Tensor, tf.Tensor, tf.Tensor]]


class PyramidFeatures(NamedTuple):
    """Raw multi-scale features, the official DELG export's outputs.

    Attributes:
      boxes: float32 [N, 4] receptive-field boxes (ymin, xmin, ymax, xmax) in the pixels of the
        image given to the pyramid.
      features: float32 [N, d] raw (not normalised) local descriptors.
      scales: float32 [N] 1 / (pyramid scale the feature came from), as the official export.
      scores: float32 [N] attention (softplus), highest first.
      global_descriptors: float32 [G, D] raw global descriptors, one per global scale index.
    """

    boxes: tf.Tensor
    features: tf.Tensor
    scales: tf.Tensor
    scores: tf.Tensor
    global_descriptors: tf.Tensor


def scaled_size(image_size: tf.Tensor, scale: tf.Tensor) -> tf.Tensor:
    """Pyramid level size: round(size * scale), at least 1 px.

    Args:
      image_size: int [2] (H, W).
      scale: float scalar.

    Returns:
      int32 [2].
    """
    size = tf.round(tf.cast(image_size, tf.float32) * scale)
    return tf.maximum(tf.cast(size, tf.int32), 1)


def extract_pyramid(
    image: tf.Tensor,
    scales: tf.Tensor,
    global_scales_ind: tf.Tensor,
    abs_thres: tf.Tensor,
    max_feature_num: tf.Tensor,
    model_fn: ModelFn,
    field: ReceptiveField,
    local_dim: int,
    global_dim: int,
) -> PyramidFeatures:
    """Runs the network at every scale, keeps attention >= threshold, then the global top-k.

    Args:
      image: float32 [H, W, 3] normalised image.
      scales: float32 [S] pyramid scales.
      global_scales_ind: int32 [G] indices into `scales` whose global descriptors are returned.
      abs_thres: float32 scalar absolute attention threshold (kept if score >= it).
      max_feature_num: int32 scalar, the most features returned over all scales.
      model_fn: the network, see `ModelFn`.
      field: receptive field of the local feature map.
      local_dim: d, local descriptor depth.
      global_dim: D, global descriptor depth.

    Returns:
      `PyramidFeatures`.
    """
    scales = tf.cast(tf.reshape(scales, [-1]), tf.float32)
    num_scales = tf.size(scales)
    image_size = tf.shape(image)[:2]
    batched = image[tf.newaxis]

    def array(shape: list) -> tf.TensorArray:
        return tf.TensorArray(
            tf.float32, size=num_scales, infer_shape=False, element_shape=tf.TensorShape(shape)
        )

    def body(i, boxes_ta, features_ta, scales_ta, scores_ta, global_ta):
        scale = scales[i]
        resized = tf.image.resize(batched, scaled_size(image_size, scale), method="bilinear")
        global_desc, attention, local = model_fn(resized)
        height, width = tf.shape(attention)[1], tf.shape(attention)[2]
        boxes = receptive_boxes(height, width, field) / scale
        attention = tf.reshape(tf.cast(attention, tf.float32), [-1])
        local = tf.reshape(tf.cast(local, tf.float32), [-1, local_dim])
        keep = threshold_indices(attention, abs_thres)
        kept_scores = tf.gather(attention, keep)
        return (
            i + 1,
            boxes_ta.write(i, tf.gather(boxes, keep)),
            features_ta.write(i, tf.gather(local, keep)),
            scales_ta.write(i, tf.ones_like(kept_scores) / scale),
            scores_ta.write(i, kept_scores),
            global_ta.write(i, tf.reshape(tf.cast(global_desc, tf.float32), [global_dim])),
        )

    loop_vars = (
        tf.constant(0),
        array([None, 4]),
        array([None, local_dim]),
        array([None]),
        array([None]),
        tf.TensorArray(tf.float32, size=num_scales, element_shape=tf.TensorShape([global_dim])),
    )
    _, boxes_ta, features_ta, scales_ta, scores_ta, global_ta = tf.while_loop(
        lambda i, *_: i < num_scales, body, loop_vars
    )
    boxes = tf.reshape(boxes_ta.concat(), [-1, 4])
    features = tf.reshape(features_ta.concat(), [-1, local_dim])
    feature_scales = tf.reshape(scales_ta.concat(), [-1])
    scores = tf.reshape(scores_ta.concat(), [-1])
    order = top_k_indices(scores, max_feature_num)
    global_all = tf.reshape(global_ta.stack(), [-1, global_dim])
    return PyramidFeatures(
        boxes=tf.gather(boxes, order),
        features=tf.gather(features, order),
        scales=tf.gather(feature_scales, order),
        scores=tf.gather(scores, order),
        global_descriptors=tf.gather(global_all, tf.cast(global_scales_ind, tf.int32)),
    )
