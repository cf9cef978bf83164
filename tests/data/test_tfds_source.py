"""Tests for delg_tf.data.tfds_source on TFDS mock data (nothing is downloaded)."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from delg_tf.data import parser, tfds_source

SIZE = 24


def _build(name, tmp_path, is_training=True, normalization="delf", random_flip=False, **kwargs):
    parse = parser.Parser(SIZE, normalization, is_training, random_flip=random_flip)
    options = dict(data_dir=str(tmp_path), split="train", global_batch_size=4, seed=0)
    options.update(kwargs)
    return tfds_source.build_tfds_dataset(name, parse, **options)


def test_mnist_grayscale_becomes_rgb_batches(tmp_path):
    with tfds.testing.mock_data(num_examples=10):
        images, labels = next(iter(_build("mnist", tmp_path)))
    assert images.shape == (4, SIZE, SIZE, 3) and images.dtype == tf.float32
    assert labels.dtype == tf.int32 and np.all((labels.numpy() >= 0) & (labels.numpy() < 10))
    pixels = images.numpy()
    # Gray replicated to three channels: R == G == B under the channel-agnostic delf mode.
    np.testing.assert_array_equal(pixels[..., 0], pixels[..., 1])
    np.testing.assert_array_equal(pixels[..., 0], pixels[..., 2])
    assert pixels.min() >= -1.0 and pixels.max() <= 1.0 and pixels.std() > 0


def test_cifar10_evaluation_epoch_keeps_every_example(tmp_path):
    with tfds.testing.mock_data(num_examples=10):
        ds = _build("cifar10", tmp_path, is_training=False, normalization="caffe")
        batches = list(ds)
    assert [int(labels.shape[0]) for _, labels in batches] == [4, 4, 2]
    assert all(images.shape[1:] == (SIZE, SIZE, 3) for images, _ in batches)


def test_seeded_deterministic_tfds_pipeline_repeats_exactly(tmp_path):
    def first_batches():
        with tfds.testing.mock_data(num_examples=12):
            ds = _build("cifar10", tmp_path, deterministic=True, random_flip=True)
            return [images.numpy() for images, _ in ds.take(4)]

    for a, b in zip(first_batches(), first_batches(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_unknown_feature_key_is_named(tmp_path):
    with tfds.testing.mock_data(num_examples=4):
        with pytest.raises(ValueError, match="image_key='photo'.*'image'"):
            _build("mnist", tmp_path, image_key="photo")
        with pytest.raises(ValueError, match="label_key='landmark_id'"):
            _build("mnist", tmp_path, label_key="landmark_id")


def test_unlabelled_use_gives_minus_one(tmp_path):
    with tfds.testing.mock_data(num_examples=4):
        _, labels = next(iter(_build("mnist", tmp_path, label_key=None, is_training=False)))
    np.testing.assert_array_equal(labels.numpy(), [-1, -1, -1, -1])


def test_to_rgb_handles_gray_rgba_and_rejects_others():
    gray = tf.fill([2, 3, 1], tf.constant(9, tf.uint8))
    np.testing.assert_array_equal(tfds_source.to_rgb(gray).numpy(), np.full([2, 3, 3], 9))
    rgba = tf.constant(np.arange(24, dtype=np.uint8).reshape(2, 3, 4))
    np.testing.assert_array_equal(tfds_source.to_rgb(rgba).numpy(), rgba.numpy()[..., :3])
    with pytest.raises(ValueError, match="channels"):
        tfds_source.to_rgb(tf.zeros([2, 3, 2], tf.uint8))
    with pytest.raises(ValueError, match="float32"):
        tfds_source.to_rgb(tf.zeros([2, 3, 3], tf.float32))
