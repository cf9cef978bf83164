"""Tests for delg_tf.data.parser: the official crop, the evaluation crop, flips, determinism."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from delg_tf.data import parser, preprocessing


def _seed(i):
    return tf.stack([tf.constant(7, tf.int64), tf.cast(i, tf.int64)])


def test_crop_window_statistics_over_many_seeds():
    height, width = 300, 400  # aspect 4/3, so even the whole-image fallback is in range
    areas, aspects, offsets = [], [], []
    for i in range(300):
        offset, size = parser.sample_crop_window(tf.constant([height, width, 3]), _seed(i))
        (y, x), (h, w) = offset.numpy(), size.numpy()
        assert 0 <= y and 0 <= x and y + h <= height and x + w <= width
        areas.append(h * w / (height * width))
        aspects.append(w / h)
        offsets.append((y, x))
    areas, aspects = np.array(areas), np.array(aspects)
    # Whole image as the object box with min_object_covered 0.1 lifts the floor from 0.08 to 0.1.
    assert areas.min() >= 0.08 and areas.max() <= 1.0
    assert areas.min() < 0.2 and areas.max() > 0.8  # the range is actually explored
    # Pixel rounding can push width/height slightly past the sampled ratio.
    assert aspects.min() >= 0.75 * 0.97 and aspects.max() <= (4 / 3) * 1.03
    assert len(set(offsets)) > 100


def test_crop_window_is_a_function_of_the_seed():
    shape = tf.constant([120, 90, 3])
    a = parser.sample_crop_window(shape, _seed(3))
    b = parser.sample_crop_window(shape, _seed(3))
    c = parser.sample_crop_window(shape, _seed(4))
    np.testing.assert_array_equal(tf.concat(a, 0), tf.concat(b, 0))
    assert not np.array_equal(tf.concat(a, 0), tf.concat(c, 0))


@pytest.mark.parametrize("mode,low,high", [("delf", -1.0, 127 / 128), ("caffe", -124.0, 152.0)])
def test_training_parse_shape_dtype_range(mode, low, high):
    image = tf.constant(np.random.default_rng(0).integers(0, 256, [50, 70, 3]), tf.uint8)
    parse = parser.Parser(image_size=32, normalization=mode, is_training=True)
    out, label = parse(
        {"image": image, "label": tf.constant(5, tf.int32), "id": tf.constant("x")}, _seed(0)
    )
    assert out.shape == (32, 32, 3) and out.dtype == tf.float32
    assert label.dtype == tf.int32 and int(label) == 5
    assert out.numpy().min() >= low and out.numpy().max() <= high


def test_training_crop_of_flat_image_is_flat():
    image = tf.fill([40, 60, 3], tf.constant(100, tf.uint8))
    out = parser.Parser(24, "delf", is_training=True).parse_image(image, _seed(1))
    np.testing.assert_allclose(out.numpy(), (100 - 128) / 128, atol=1e-5)


def _column_ramp(height, width):
    """uint8 image whose value is the column index, the same in every row and channel."""
    ramp = np.broadcast_to(np.arange(width, dtype=np.uint8)[None, :, None], [height, width, 3])
    return tf.constant(ramp)


def test_evaluation_crop_preserves_aspect():
    # 64x128 -> shorter side 32 gives 32x64 (area: output column j averages source columns
    # 2j, 2j+1), then the central 32 columns start at resized column 16.
    out = parser.Parser(32, "delf", is_training=False).parse_image(_column_ramp(64, 128))
    pixels = preprocessing.denormalize_image(out, "delf").numpy()
    expected = 2 * (np.arange(32) + 16) + 0.5
    np.testing.assert_allclose(pixels[5, :, 0], expected, atol=1e-3)
    np.testing.assert_allclose(pixels[:, 7, 1], expected[7], atol=1e-3)  # constant down columns


def test_no_augmentation_training_equals_evaluation_without_seed():
    image = _column_ramp(48, 80)
    train = parser.Parser(24, "caffe", is_training=True, augmentation=False).parse_image(image)
    evaluation = parser.Parser(24, "caffe", is_training=False).parse_image(image)
    np.testing.assert_array_equal(train.numpy(), evaluation.numpy())


def test_no_flip_by_default_and_flips_when_enabled():
    image = _column_ramp(32, 32)
    no_flip = parser.Parser(32, "delf", is_training=True, augmentation=False)
    flip = dataclasses.replace(no_flip, random_flip=True)
    unflipped = no_flip.parse_image(image).numpy()
    assert unflipped[0, 0, 0] < unflipped[0, -1, 0]
    for i in range(20):
        np.testing.assert_array_equal(no_flip.parse_image(image, _seed(i)), unflipped)
    flips = 0
    for i in range(40):
        out = flip.parse_image(image, _seed(i)).numpy()
        if np.array_equal(out, unflipped[:, ::-1]):
            flips += 1
        else:
            np.testing.assert_array_equal(out, unflipped)
    assert 5 <= flips <= 35


def test_training_randomness_requires_a_seed_and_options_are_checked():
    image = tf.zeros([16, 16, 3], tf.uint8)
    with pytest.raises(ValueError, match="seed"):
        parser.Parser(8, "delf", is_training=True).parse_image(image)
    with pytest.raises(ValueError, match="normalization .*got 'rgb'"):
        parser.Parser(8, "rgb", is_training=False)
    with pytest.raises(ValueError, match="image_size .*got 0"):
        parser.Parser(0, "delf", is_training=False)


def test_parse_is_deterministic_in_a_dataset_map():
    images = tf.constant(np.random.default_rng(2).integers(0, 256, [4, 40, 50, 3]), tf.uint8)

    def run():
        ds = tf.data.Dataset.from_tensor_slices(images).enumerate()
        ds = ds.map(
            lambda i, im: parser.Parser(16, "delf", is_training=True).parse_image(im, _seed(i)),
            num_parallel_calls=4,
        )
        return np.stack([x.numpy() for x in ds])

    first, second = run(), run()
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first[0], first[1])
