"""SuperGlobal pooling ops (GeM+, regional GeM, Scale-GeM) against numpy and hand values."""

import numpy as np
import pytest
import tensorflow as tf

from delg_tf.export.global_pooling import GlobalPooling, gem, regional_gem
from delg_tf.export.postprocessing import aggregate_global_descriptors


def _numpy_regional(x, power=2.5, size=5):
    pad = (size - 1) // 2
    padded = np.pad(x, [(0, 0), (pad, pad), (pad, pad), (0, 0)], mode="reflect")
    out = np.empty_like(x)
    for i in range(x.shape[1]):
        for j in range(x.shape[2]):
            window = padded[:, i : i + size, j : j + size] ** power
            out[:, i, j] = window.mean(axis=(1, 2)) ** (1 / power)
    return 0.5 * out + 0.5 * x


def test_gem_plus_power_is_the_generalised_mean():
    x = np.random.default_rng(0).uniform(0.1, 3.0, (2, 3, 4, 5)).astype(np.float32)
    expected = np.mean(x**4.6, axis=(1, 2)) ** (1 / 4.6)
    np.testing.assert_allclose(gem(tf.constant(x), 4.6).numpy(), expected, rtol=1e-5)


def test_regional_gem_matches_a_reflection_padded_power_mean():
    x = np.random.default_rng(1).uniform(0.0, 2.0, (1, 6, 7, 3)).astype(np.float32)
    np.testing.assert_allclose(regional_gem(tf.constant(x)).numpy(), _numpy_regional(x), rtol=1e-5)


def test_regional_gem_hand_values():
    # A constant map is its own power mean: unchanged.
    flat = np.full((1, 4, 4, 1), 2.0, np.float32)
    np.testing.assert_allclose(regional_gem(tf.constant(flat)).numpy(), flat, rtol=1e-6)
    # One hot cell (value 1) in the middle of a 5x5 map of zeros: its own window holds it once,
    # so it becomes 0.5 * 1 + 0.5 * (1 / 25)^(1 / 2.5); the corner's window holds it 4 times
    # (reflection maps padded rows/columns -2 and 2 both to 2), giving 0.5 * (4 / 25)^(1 / 2.5).
    hot = np.zeros((1, 5, 5, 1), np.float32)
    hot[0, 2, 2, 0] = 1.0
    out = regional_gem(tf.constant(hot)).numpy()
    assert out[0, 2, 2, 0] == pytest.approx(0.5 + 0.5 * 25 ** (-1 / 2.5), rel=1e-6)
    assert out[0, 0, 0, 0] == pytest.approx(0.5 * (4 / 25) ** (1 / 2.5), rel=1e-6)


@pytest.mark.parametrize("side", [1, 2])
def test_regional_gem_on_maps_too_small_to_reflect(side):
    x = np.full((1, side, side, 2), 3.0, np.float32)
    np.testing.assert_allclose(regional_gem(tf.constant(x)).numpy(), x, rtol=1e-6)


def test_scale_gem_takes_the_maximum_of_normalised_scales():
    per_scale = tf.constant([[3.0, 0.0, 4.0], [0.0, 2.0, 0.0]])
    # Normalised: (0.6, 0, 0.8) and (0, 1, 0); max (0.6, 1, 0.8) / sqrt(2).
    got = aggregate_global_descriptors(per_scale, "max").numpy()
    np.testing.assert_allclose(got, np.array([0.6, 1.0, 0.8]) / np.sqrt(2.0), rtol=1e-6)
    summed = aggregate_global_descriptors(per_scale).numpy()
    np.testing.assert_allclose(summed, np.array([0.6, 1.0, 0.8]) / np.sqrt(2.0), rtol=1e-6)
    two = tf.constant([[1.0, 0.0], [1.0, 1.0]])
    np.testing.assert_allclose(
        aggregate_global_descriptors(two, "max").numpy(),
        np.array([1.0, 1 / np.sqrt(2)]) / np.hypot(1.0, 1 / np.sqrt(2)),
        rtol=1e-6,
    )
    with pytest.raises(ValueError, match="'sum' or 'max'"):
        aggregate_global_descriptors(two, "mean")


def test_options_are_validated_and_default_is_official():
    assert not GlobalPooling().changes_pooling
    assert GlobalPooling(gem_power=4.6).changes_pooling
    assert GlobalPooling.from_dict(None) == GlobalPooling()
    with pytest.raises(ValueError, match="scale_aggregation"):
        GlobalPooling(scale_aggregation="mean")
    with pytest.raises(ValueError, match="regional_size must be odd"):
        GlobalPooling(regional_size=4)
    with pytest.raises(ValueError, match="global_pooling"):
        GlobalPooling.from_dict({"gem": 3})
