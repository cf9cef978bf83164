"""Decodes one serialized DELF/DELG `tf.train.Example` into an image, a label and an id.

The first stage of decode -> parse -> read. The keys come from `example_schema`, so records
written by the official `build_image_dataset.py` decode here unchanged.
"""

from __future__ import annotations

import tensorflow as tf

from delg_tf.data import example_schema

IMAGE = "image"
LABEL = "label"
ID = "id"


def decode(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
    """Decodes a serialized Example.

    Args:
      serialized: scalar string tensor, one serialized `tf.train.Example`.

    Returns:
      A dict with
        `image`: uint8 `[H, W, 3]`. JPEGs are decoded with `channels=3`, so grayscale and CMYK
          JPEGs become RGB instead of breaking the batch shape.
        `label`: int32 scalar, `example_schema.NO_LABEL` (-1) when the record has no label.
        `id`: string scalar, the record's `image/id`.

    Raises:
      tf.errors.InvalidArgumentError: (when run) if the bytes are not an Example or the image is
        not a decodable JPEG. The reader turns these into errors that name the record and file.
    """
    features = example_schema.parse_example(serialized)
    image = tf.io.decode_jpeg(features[example_schema.ENCODED], channels=3)
    return {
        IMAGE: tf.ensure_shape(image, [None, None, 3]),
        LABEL: tf.cast(features[example_schema.LABEL], tf.int32),
        ID: features[example_schema.ID],
    }
