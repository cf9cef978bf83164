"""The fused, scale-folding SGD equals Keras SGD applied to clipped gradients."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from delg_tf.training.learning_rate import LinearDecayToZero
from delg_tf.training.optimizer import build_optimizer
from delg_tf.training.train_step import clip_factor


def _variables(rng):
    return [
        keras.Variable(rng.normal(size=(5, 7)).astype(np.float32), name="kernel"),
        keras.Variable(rng.normal(size=(7,)).astype(np.float32), name="bias"),
    ]


@pytest.mark.parametrize("clip_norm", [0.5, 1e3])  # binding and not binding
def test_apply_scaled_matches_keras_sgd_on_clipped_gradients(make_config, tmp_path, clip_norm):
    rng = np.random.default_rng(0)
    config = make_config(logdir=str(tmp_path), initial_lr=0.1, max_iters=10)
    ours, reference = _variables(rng), [keras.Variable(v.numpy()) for v in _variables(rng)]
    for r, v in zip(reference, ours, strict=True):
        r.assign(v.numpy())
    optimizer = build_optimizer(config)
    keras_sgd = keras.optimizers.SGD(
        learning_rate=LinearDecayToZero(0.1, 10), momentum=config.momentum
    )

    @tf.function
    def step(grads):
        norm = tf.linalg.global_norm(grads)
        optimizer.apply_scaled(grads, ours, clip_factor(norm, clip_norm))
        clipped, _ = tf.clip_by_global_norm(grads, clip_norm)
        keras_sgd.apply(clipped, reference)

    for _ in range(4):  # momentum carries over steps; the learning rate decays
        step([tf.constant(rng.normal(size=v.shape).astype(np.float32)) for v in ours])
    for x, y in zip(ours, reference, strict=True):
        np.testing.assert_allclose(x.numpy(), y.numpy(), rtol=1e-5, atol=1e-6)
    for x, y in zip(optimizer.momentums, keras_sgd.momentums, strict=True):
        np.testing.assert_allclose(x.numpy(), y.numpy(), rtol=1e-5, atol=1e-6)
    assert int(optimizer.iterations.numpy()) == int(keras_sgd.iterations.numpy()) == 4


def test_plain_apply_is_keras_sgd(make_config, tmp_path):
    rng = np.random.default_rng(1)
    config = make_config(logdir=str(tmp_path), initial_lr=0.1, max_iters=10)
    optimizer = build_optimizer(config)
    ours = _variables(rng)
    reference = [keras.Variable(v.numpy()) for v in ours]
    keras_sgd = keras.optimizers.SGD(learning_rate=0.1, momentum=config.momentum)
    grads = [tf.constant(rng.normal(size=v.shape).astype(np.float32)) for v in ours]
    optimizer.apply(grads, ours)
    keras_sgd.apply(grads, reference)
    for x, y in zip(ours, reference, strict=True):
        np.testing.assert_allclose(x.numpy(), y.numpy(), rtol=1e-6)


def test_clip_factor_is_the_global_norm_clip():
    for norm in (0.3, 10.0, 250.0):
        factor = float(clip_factor(tf.constant(norm), 10.0))
        assert factor == pytest.approx(min(1.0, 10.0 / norm), rel=1e-6)
    assert np.isnan(float(clip_factor(tf.constant(np.inf, tf.float32), 10.0)))
    assert np.isnan(float(clip_factor(tf.constant(np.nan, tf.float32), 10.0)))


def test_apply_scaled_on_two_replicas_uses_each_replicas_scale(make_config, tmp_path):
    """Under MirroredStrategy the fused update and the folded scale act on every replica copy."""
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    config = make_config(logdir=str(tmp_path), initial_lr=0.1, max_iters=10)
    with strategy.scope():
        variable = keras.Variable(np.ones((3,), np.float32))
        optimizer = build_optimizer(config)
        optimizer.build([variable])

    @tf.function
    def step():
        def replica_fn():
            grad = tf.constant([1.0, 2.0, 3.0])
            optimizer.apply_scaled([grad], [variable], tf.constant(0.5))

        strategy.run(replica_fn)

    step()
    expected = 1.0 - 0.1 * 0.5 * np.array([1.0, 2.0, 3.0])  # first step: m = -lr * g
    for copy in strategy.experimental_local_results(variable.value):
        np.testing.assert_allclose(copy.numpy(), expected, rtol=1e-6)
