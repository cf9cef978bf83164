"""GeM pooling against the official anchor and its limits."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from delg_tf.models import GeMPooling
from tests.helpers.layer_harness import check_layer


def test_official_anchor():
    x = np.array([[[[0, 1], [2, 3]], [[4, 5], [6, 7]]]], np.float32)
    np.testing.assert_allclose(GeMPooling()(x), [[4.1601677, 4.9866314]], rtol=1e-6)


def test_power_one_is_mean_and_large_power_approaches_max():
    rng = np.random.default_rng(0)
    x = rng.uniform(0.1, 5.0, size=(3, 4, 5, 6)).astype(np.float32)
    np.testing.assert_allclose(GeMPooling(power=1.0)(x), x.mean(axis=(1, 2)), rtol=1e-5)
    # p = 500 would overflow a naive x**p in float32; the max-scaled form stays finite.
    big = np.asarray(GeMPooling(power=500.0)(x))
    assert np.all(np.isfinite(big))
    np.testing.assert_allclose(big, x.max(axis=(1, 2)), rtol=1e-2)
    assert np.all(big <= x.max(axis=(1, 2)) * (1 + 1e-6))


def test_eps_clamp_handles_zeros_and_negatives():
    x = np.zeros((1, 2, 2, 1), np.float32)
    x[0, 0, 0, 0] = -3.0
    np.testing.assert_allclose(GeMPooling()(x), [[1e-6]], rtol=1e-5)
    with tf.GradientTape() as tape:
        t = tf.constant(x)
        tape.watch(t)
        y = GeMPooling()(t)
    assert np.all(np.isfinite(tape.gradient(y, t)))


def test_fixed_power_has_no_variable_and_trainable_power_is_clamped():
    fixed = GeMPooling()
    fixed(np.ones((1, 2, 2, 1), np.float32))
    assert fixed.weights == []
    layer = GeMPooling(power=3.0, trainable_power=True, max_power=6.0)
    x = np.random.default_rng(1).uniform(0.1, 2.0, size=(2, 3, 3, 4)).astype(np.float32)
    layer(x)
    assert [v.name for v in layer.trainable_weights] == ["power"]
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(layer(x))
    assert np.isfinite(tape.gradient(y, layer.p).numpy())
    # Optimizer updates are clamped by the variable's constraint...
    optimizer = keras.optimizers.SGD(learning_rate=100.0)
    optimizer.apply_gradients([(tf.constant(-1.0), layer.p)])
    assert float(layer.p.numpy()) == 6.0
    # ...and the forward pass clips a value assigned out of range.
    layer.p.assign(50.0)
    np.testing.assert_allclose(layer(x), GeMPooling(power=6.0)(x), rtol=1e-6)
    with pytest.raises(ValueError, match="outside"):
        GeMPooling(power=20.0, trainable_power=True)


def test_serialization_round_trip_and_mixed_precision():
    x = np.random.default_rng(2).uniform(0.0, 3.0, size=(2, 3, 3, 4)).astype(np.float32)
    check_layer(
        lambda: GeMPooling(power=4.0, trainable_power=True, min_power=2.0, max_power=8.0, name="g"),
        [x],
        mixed_compute_dtype="float32",  # head_dtype(): precision-sensitive, float32 on purpose
    )
    check_layer(lambda: GeMPooling(power=3.0, name="fixed"), [x], mixed_compute_dtype="float32")
