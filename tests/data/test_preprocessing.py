"""Tests for delg_tf.data.preprocessing: normalization conventions and aspect-preserving resizes."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from delg_tf.data import preprocessing


def _pixels(shape, seed=0):
    return np.random.default_rng(seed).uniform(0.0, 255.0, shape).astype(np.float32)


def test_caffe_matches_keras_applications_preprocess_input():
    x = _pixels([2, 5, 7, 3])
    expected = keras.applications.imagenet_utils.preprocess_input(x.copy(), mode="caffe")
    got = preprocessing.normalize_image(x, "caffe")
    assert got.dtype == tf.float32
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-4)


def test_caffe_hand_computed_pixel():
    # RGB (10, 20, 30) -> BGR (30, 20, 10) minus the BGR ImageNet mean.
    pixel = tf.constant([[[10, 20, 30]]], tf.uint8)
    got = preprocessing.normalize_image(pixel, "caffe").numpy()[0, 0]
    np.testing.assert_allclose(got, [30 - 103.939, 20 - 116.779, 10 - 123.68], rtol=1e-6)


def test_delf_hand_computed_values_and_range():
    pixels = tf.constant([[[0, 128, 255]]], tf.uint8)
    got = preprocessing.normalize_image(pixels, "delf").numpy()[0, 0]
    np.testing.assert_allclose(got, [-1.0, 0.0, 127.0 / 128.0])
    full = preprocessing.normalize_image(_pixels([3, 8, 8, 3]), "delf").numpy()
    assert full.min() >= -1.0 and full.max() <= 127.0 / 128.0


def test_uint8_and_float_inputs_agree_with_leading_batch_dims():
    x = np.random.default_rng(1).integers(0, 256, [2, 3, 4, 4, 3]).astype(np.uint8)
    for mode in preprocessing.NORMALIZATION_MODES:
        a = preprocessing.normalize_image(x, mode)
        b = preprocessing.normalize_image(x.astype(np.float32), mode)
        assert a.shape == (2, 3, 4, 4, 3) and a.dtype == tf.float32
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("mode", preprocessing.NORMALIZATION_MODES)
def test_denormalize_inverts_normalize(mode):
    x = _pixels([4, 6, 3])
    back = preprocessing.denormalize_image(preprocessing.normalize_image(x, mode), mode)
    np.testing.assert_allclose(back.numpy(), x, atol=1e-4)


def test_unknown_mode_and_wrong_channels_are_rejected():
    with pytest.raises(ValueError, match="'torch'"):
        preprocessing.normalize_image(_pixels([4, 4, 3]), "torch")
    with pytest.raises(ValueError, match="3 channels"):
        preprocessing.normalize_image(_pixels([4, 4, 1]), "delf")


def test_resize_shorter_side_preserves_aspect():
    image = tf.zeros([60, 90, 3], tf.uint8)
    resized = preprocessing.resize_shorter_side(image, 40)
    assert resized.shape == (40, 60, 3) and resized.dtype == tf.float32
    tall = preprocessing.resize_shorter_side(tf.zeros([100, 30, 3]), 12)
    assert tall.shape == (40, 12, 3)


def test_central_crop_takes_the_middle():
    image = tf.reshape(tf.range(5 * 7, dtype=tf.int32), [5, 7, 1])
    crop = preprocessing.central_crop(image, 3).numpy()[..., 0]
    np.testing.assert_array_equal(crop, np.arange(35).reshape(5, 7)[1:4, 2:5])
