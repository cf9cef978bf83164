"""What a user wants from the raw official outputs: keypoints, unit descriptors, one global vector.

The official extractor does this in numpy after the SavedModel (`examples/extractor.py`); the named
convenience signatures and our extractor share these functions so the two cannot drift apart.
"""

from __future__ import annotations

import tensorflow as tf

from delg_tf.export.receptive_boxes import box_centers


def aggregate_global_descriptors(per_scale: tf.Tensor, aggregation: str = "sum") -> tf.Tensor:
    """Per-scale L2 normalisation, sum (official) or maximum (Scale-GeM) over scales, L2 again.

    Args:
      per_scale: float [G, D] raw global descriptors, one per global scale.
      aggregation: "sum" (the official DELG) or "max" (SuperGlobal's Scale-GeM, see
        `global_pooling`).

    Returns:
      float [D] unit-norm descriptor (zeros if G == 0).
    """
    per_scale = tf.math.l2_normalize(per_scale, axis=1)
    if aggregation == "max":
        combined = tf.reduce_max(per_scale, axis=0)
        combined = tf.where(tf.shape(per_scale)[0] > 0, combined, tf.zeros_like(combined))
    elif aggregation == "sum":
        combined = tf.reduce_sum(per_scale, axis=0)
    else:
        raise ValueError(f"global aggregation must be 'sum' or 'max', got {aggregation!r}")
    return tf.math.l2_normalize(combined, axis=0)


def normalize_local_descriptors(features: tf.Tensor) -> tf.Tensor:
    """L2-normalises raw local descriptors.

    Args:
      features: float [N, d] raw autoencoder-bottleneck descriptors.

    Returns:
      float [N, d] unit-norm descriptors.
    """
    return tf.math.l2_normalize(features, axis=1)


def keypoint_locations(boxes: tf.Tensor, resize_factors: tf.Tensor | None = None) -> tf.Tensor:
    """Keypoints (y, x) from receptive-field boxes, optionally mapped back through a resize.

    Args:
      boxes: float [N, 4] (ymin, xmin, ymax, xmax) boxes in the pixels of the image given to the
        model (the pyramid scale is already divided out).
      resize_factors: optional float [2] (new_h / h, new_w / w) of the resize that produced the
        model's input; the locations are divided by it to land in original-image pixels.

    Returns:
      float [N, 2] (y, x) locations.
    """
    centres = box_centers(boxes)
    if resize_factors is None:
        return centres
    return centres / tf.cast(tf.reshape(resize_factors, [1, 2]), centres.dtype)
