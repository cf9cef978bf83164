"""The TFRecord Example schema: the one place that names the keys.

The keys and types are those of the official DELF `build_image_dataset.py`, so records written by
the official tool parse here and records written here parse with the official reader.
`image/encoded` holds JPEG bytes; `image/class/label` is absent in test records.
"""

from __future__ import annotations

import tensorflow as tf

ENCODED = "image/encoded"
FORMAT = "image/format"
HEIGHT = "image/height"
WIDTH = "image/width"
CHANNELS = "image/channels"
COLORSPACE = "image/colorspace"
ID = "image/id"
LABEL = "image/class/label"
# Declared by the official parser but never written by the official tool.
FILENAME = "image/filename"

# Label value returned for records that carry no label (test records).
NO_LABEL = -1

FEATURE_SPEC = {
    ENCODED: tf.io.FixedLenFeature([], tf.string, default_value=""),
    FORMAT: tf.io.FixedLenFeature([], tf.string, default_value="jpeg"),
    HEIGHT: tf.io.FixedLenFeature([], tf.int64, default_value=0),
    WIDTH: tf.io.FixedLenFeature([], tf.int64, default_value=0),
    CHANNELS: tf.io.FixedLenFeature([], tf.int64, default_value=3),
    COLORSPACE: tf.io.FixedLenFeature([], tf.string, default_value="RGB"),
    ID: tf.io.FixedLenFeature([], tf.string, default_value=""),
    FILENAME: tf.io.FixedLenFeature([], tf.string, default_value=""),
    LABEL: tf.io.FixedLenFeature([], tf.int64, default_value=NO_LABEL),
}


def _bytes(value: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int64(value: int) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))


def make_example(
    image_id: str,
    encoded_jpeg: bytes,
    height: int,
    width: int,
    label: int | None = None,
) -> tf.train.Example:
    """Builds one Example exactly as the official tool lays it out (RGB JPEG, 3 channels)."""
    feature = {
        HEIGHT: _int64(height),
        WIDTH: _int64(width),
        COLORSPACE: _bytes(b"RGB"),
        CHANNELS: _int64(3),
        FORMAT: _bytes(b"JPEG"),
        ID: _bytes(image_id.encode("utf-8")),
        ENCODED: _bytes(encoded_jpeg),
    }
    if label is not None:
        feature[LABEL] = _int64(label)
    return tf.train.Example(features=tf.train.Features(feature=feature))


def parse_example(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
    """Parses one serialized Example into a dict keyed by the schema's keys."""
    return tf.io.parse_single_example(serialized, FEATURE_SPEC)
