"""ArcFace against an independent numpy implementation, incl. the margin rule and cos = +-1."""

import math

import numpy as np
import tensorflow as tf

from delg_tf.models import ArcFace
from delg_tf.models.arcface import arcface_cosine_with_margin
from tests.helpers.layer_harness import check_layer

SCALE, MARGIN = 45.25, 0.1


def numpy_arcface(x, w, labels, scale, margin, training):
    """Straight transcription of the ArcFace definition, one entry at a time."""
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    w = w / np.linalg.norm(w, axis=0, keepdims=True)
    cos = (x.astype(np.float64) @ w.astype(np.float64)).clip(-1.0, 1.0)
    if training:
        for i, y in enumerate(labels):
            theta = math.acos(cos[i, y])
            if theta <= math.pi - margin:
                cos[i, y] = math.cos(theta + margin)
    return scale * cos


def _layer_with_kernel(w, **kwargs):
    layer = ArcFace(w.shape[1], **kwargs)
    layer.build((None, w.shape[0]))
    layer.kernel.assign(w)
    return layer


def _unit(angle):
    return [math.cos(angle), math.sin(angle)]


def test_margin_rule_on_exact_angles():
    # Four classes on the unit circle at 0, 1, 2, 3 rad (scaled: normalization must not matter).
    w = np.array([_unit(a) for a in (0.0, 1.0, 2.0, 3.0)], np.float32).T * [1, 2, 3, 4]
    # Embedding at angle 0 (theta to class c is c rad); at pi (theta to class 3 is pi - 3).
    # Rows: true class 1 at theta 1 (margin); class 0 at cos = +1 (margin); class 0 from angle
    # pi (cos = -1, theta = pi > pi - m: unchanged); class 3 at theta 3.0 <= pi - 0.1 (margin);
    # class 3 from angle -0.09, theta 3.09 > pi - 0.1 = 3.0416 (no margin).
    angles = (0.0, 0.0, math.pi, 0.0, -0.09)
    x = np.array([_unit(a) for a in angles], np.float32) * 7
    labels = np.array([1, 0, 0, 3, 3])
    layer = _layer_with_kernel(w)
    logits = np.asarray(layer(x, labels=labels, training=True))
    expected = numpy_arcface(x, w, labels, SCALE, MARGIN, training=True)
    np.testing.assert_allclose(logits, expected, atol=SCALE * 1e-4)
    # Hand values for the true-class entries.
    np.testing.assert_allclose(logits[0, 1], SCALE * math.cos(1.1), atol=1e-3)
    np.testing.assert_allclose(logits[1, 0], SCALE * math.cos(0.1), atol=5e-3)
    np.testing.assert_allclose(logits[2, 0], -SCALE, atol=1e-3)
    np.testing.assert_allclose(logits[3, 3], SCALE * math.cos(3.1), atol=1e-3)
    np.testing.assert_allclose(logits[4, 3], SCALE * math.cos(3.09), atol=1e-3)
    # Non-true classes never get a margin.
    cos = numpy_arcface(x, w, labels, SCALE, MARGIN, training=False)
    mask = np.ones_like(cos, bool)
    mask[np.arange(5), labels] = False
    np.testing.assert_allclose(logits[mask], cos[mask], atol=1e-3)


def test_random_inputs_match_numpy_and_validation_has_no_margin():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 16)).astype(np.float32)
    w = rng.normal(size=(16, 5)).astype(np.float32)
    labels = rng.integers(0, 5, size=8)
    layer = _layer_with_kernel(w)
    np.testing.assert_allclose(
        layer(x, labels=labels, training=True),
        numpy_arcface(x, w, labels, SCALE, MARGIN, True),
        rtol=1e-4,
        atol=1e-4,
    )
    plain = numpy_arcface(x, w, labels, SCALE, MARGIN, False)
    np.testing.assert_allclose(layer(x, labels=labels, training=False), plain, atol=1e-4)
    np.testing.assert_allclose(layer(x, training=True), plain, atol=1e-4)
    assert layer(x).dtype == tf.float32


def test_gradients_are_finite_at_cos_plus_and_minus_one():
    w = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    x = tf.constant([[3.0, 0.0], [-2.0, 0.0], [0.0, 5.0]])  # cos +1, -1, +1 with true class
    labels = tf.constant([0, 0, 1])
    layer = _layer_with_kernel(w)
    with tf.GradientTape() as tape:
        tape.watch(x)
        logits = layer(x, labels=labels, training=True)
        loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
    grad_x, grad_w = tape.gradient(loss, [x, layer.kernel])
    for value in (logits, loss, grad_x, grad_w):
        assert np.all(np.isfinite(np.asarray(value)))
    assert np.any(np.asarray(grad_w) != 0)


def test_scale_fixed_by_default_and_learnable_as_option():
    fixed = ArcFace(3)
    fixed.build((None, 4))
    assert [v.name for v in fixed.trainable_weights] == ["cosine_weights"]
    learned = ArcFace(3, scale=10.0, scale_trainable=True)
    learned.build((None, 4))
    assert sorted(v.name for v in learned.trainable_weights) == ["cosine_weights", "scale_factor"]
    x = np.ones((1, 4), np.float32)
    np.testing.assert_allclose(learned(x), 10.0 * learned.cosine(x), rtol=1e-6)
    np.testing.assert_allclose(fixed(x), 45.25 * fixed.cosine(x), rtol=1e-6)


def test_serialization_round_trip_and_mixed_precision():
    x = np.random.default_rng(3).normal(size=(2, 6)).astype(np.float32)
    for training in (True, False):
        check_layer(
            lambda: ArcFace(7, scale=30.0, margin=0.2, scale_trainable=True, name="arc"),
            [x],
            {"labels": np.array([1, 2]), "training": training},
            atol=1e-5,
            mixed_compute_dtype="float32",  # head_dtype(): the cosines stay float32
        )


def test_scaled_matmul_equals_normalising_the_weights_first():
    # cos = (l2n(x) @ W) / ||W[:, c]||, the layer's form, against l2n(x) @ l2n(W): values and
    # gradients w.r.t. x and W must agree.
    rng = np.random.default_rng(7)
    x = tf.constant(rng.normal(size=(6, 12)).astype(np.float32))
    w = rng.normal(size=(12, 9)).astype(np.float32) * rng.uniform(0.1, 5.0, size=(1, 9))
    labels = tf.constant(rng.integers(0, 9, size=6))
    layer = _layer_with_kernel(w.astype(np.float32))
    upstream = tf.constant(rng.normal(size=(6, 9)).astype(np.float32))

    def normalise_first(x, kernel):
        x_unit = tf.math.l2_normalize(x, axis=1)
        cos = tf.matmul(x_unit, tf.math.l2_normalize(kernel, axis=0))
        return SCALE * arcface_cosine_with_margin(cos, labels, MARGIN)

    results = []
    for fn in (
        lambda: layer(x, labels=labels, training=True),
        lambda: normalise_first(x, layer.kernel),
    ):
        with tf.GradientTape() as tape:
            tape.watch(x)
            logits = fn()
            loss = tf.reduce_sum(logits * upstream)
        results.append([logits, *tape.gradient(loss, [x, layer.kernel])])
    for got, want in zip(results[0], results[1], strict=True):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-5)
