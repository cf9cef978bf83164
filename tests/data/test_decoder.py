"""Tests for delg_tf.data.decoder on single in-memory Examples."""

import numpy as np
import pytest
import tensorflow as tf

from delg_tf.data import decoder, example_schema


def _serialized(image, label=None, image_id="abc123"):
    encoded = tf.io.encode_jpeg(image, quality=100).numpy()
    example = example_schema.make_example(
        image_id, encoded, int(image.shape[0]), int(image.shape[1]), label=label
    )
    return example.SerializeToString()


def test_decodes_rgb_image_label_and_id():
    image = np.full([12, 20, 3], [200, 40, 90], np.uint8)
    out = decoder.decode(tf.constant(_serialized(image, label=7)))
    assert out["image"].dtype == tf.uint8 and out["image"].shape == (12, 20, 3)
    # A flat color survives JPEG at quality 100 to within a couple of levels.
    np.testing.assert_allclose(out["image"].numpy().astype(int), image.astype(int), atol=3)
    assert out["label"].dtype == tf.int32 and int(out["label"]) == 7
    assert out["id"].numpy() == b"abc123"


def test_missing_label_is_minus_one():
    out = decoder.decode(tf.constant(_serialized(np.zeros([8, 8, 3], np.uint8))))
    assert int(out["label"]) == example_schema.NO_LABEL == -1


def test_grayscale_jpeg_becomes_three_channels():
    gray = np.full([9, 11, 1], 77, np.uint8)
    out = decoder.decode(tf.constant(_serialized(gray, label=1)))
    assert out["image"].shape == (9, 11, 3)
    np.testing.assert_allclose(out["image"].numpy().astype(int), 77, atol=2)


def test_works_inside_dataset_map_with_static_channels():
    records = [_serialized(np.zeros([8, 8, 3], np.uint8), label=i) for i in range(3)]
    ds = tf.data.Dataset.from_tensor_slices(records).map(decoder.decode)
    assert ds.element_spec["image"].shape.as_list() == [None, None, 3]
    assert [int(d["label"]) for d in ds] == [0, 1, 2]


def test_corrupt_jpeg_raises():
    bad = example_schema.make_example("bad", b"not a jpeg", 8, 8, label=0).SerializeToString()
    with pytest.raises(tf.errors.InvalidArgumentError):
        decoder.decode(tf.constant(bad))
