"""Autoencoder, attention and local head: wiring, values and serialization."""

import numpy as np
import pytest
import tensorflow as tf

from delg_tf.models import Attention, Autoencoder, LocalHead
from delg_tf.models.local_head import attention_pool
from tests.helpers.layer_harness import check_layer

RNG = np.random.default_rng(0)
S = RNG.normal(size=(2, 3, 4, 8)).astype(np.float32)


def test_autoencoder_is_linear_then_relu():
    ae = Autoencoder(reduced_dim=5, expanded_dim=8)
    reduced, expanded = ae(S)
    k1, b1 = ae.reduce.kernel.numpy()[0, 0], ae.reduce.bias.numpy()
    k2, b2 = ae.expand.kernel.numpy()[0, 0], ae.expand.bias.numpy()
    want_reduced = S @ k1 + b1  # no activation: negative values survive
    np.testing.assert_allclose(reduced, want_reduced, rtol=1e-5, atol=1e-5)
    assert np.any(want_reduced < 0)
    np.testing.assert_allclose(expanded, np.maximum(want_reduced @ k2 + b2, 0), atol=1e-5)
    with pytest.raises(ValueError, match="expects 16 input channels, got 8"):
        Autoencoder(4, 16)(S)


def test_attention_is_softplus_of_conv_bn_relu_conv():
    att = Attention(filters=6)
    scores, logits = att(S, training=False)
    assert scores.shape == (2, 3, 4, 1)
    hidden = S @ att.conv1.kernel.numpy()[0, 0] + att.conv1.bias.numpy()
    bn = att.bn
    hidden = (hidden - bn.moving_mean.numpy()) / np.sqrt(bn.moving_variance.numpy() + bn.epsilon)
    hidden = np.maximum(hidden * bn.gamma.numpy() + bn.beta.numpy(), 0)
    want = hidden @ att.conv2.kernel.numpy()[0, 0] + att.conv2.bias.numpy()
    np.testing.assert_allclose(logits, want, atol=1e-5)
    np.testing.assert_allclose(scores, np.log1p(np.exp(want)), atol=1e-5)


def test_attention_pool_is_mean_of_normalized_features_times_scores():
    attention = RNG.uniform(size=(2, 3, 4, 1)).astype(np.float32)
    normalized = S / np.linalg.norm(S, axis=-1, keepdims=True)
    want = (normalized * attention).mean(axis=(1, 2))
    np.testing.assert_allclose(attention_pool(S, attention), want, rtol=1e-5, atol=1e-6)


def test_local_head_wiring_with_and_without_autoencoder():
    head = LocalHead(num_classes=3, feature_dim=8, autoencoder_dim=5, attention_filters=6)
    out = head(S, training=False)
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "reconstruction": (2, 3, 4, 8),
        "local_descriptors": (2, 3, 4, 5),
        "attention": (2, 3, 4, 1),
        "attention_logits": (2, 3),
    }
    # Paper wiring: attention computed on S, pooling runs over the reconstruction S'.
    scores, _ = head.attention(S, training=False)
    np.testing.assert_allclose(out["attention"], scores, atol=1e-6)
    pooled = attention_pool(out["reconstruction"], out["attention"])
    np.testing.assert_allclose(out["attention_logits"], head.classifier(pooled), atol=1e-5)
    keypoints = head.keypoint_outputs(S, training=False)
    np.testing.assert_array_equal(keypoints["attention"], out["attention"])
    np.testing.assert_array_equal(keypoints["local_descriptors"], out["local_descriptors"])

    # Pre-2021 wiring, same weights: attention on S', pooling over S.
    old = LocalHead(
        num_classes=3, feature_dim=8, autoencoder_dim=5, attention_filters=6,
        attention_wiring="pre_2021",
    )  # fmt: skip
    old.build(S.shape)
    old.set_weights(head.get_weights())
    out_old = old(S, training=False)
    scores, _ = old.attention(out_old["reconstruction"], training=False)
    np.testing.assert_allclose(out_old["attention"], scores, atol=1e-6)
    assert not np.allclose(out_old["attention"], out["attention"], atol=1e-3)
    pooled = attention_pool(S, out_old["attention"])
    np.testing.assert_allclose(out_old["attention_logits"], old.classifier(pooled), atol=1e-5)
    np.testing.assert_array_equal(out_old["local_descriptors"], out["local_descriptors"])
    keypoints = old.keypoint_outputs(S, training=False)
    np.testing.assert_allclose(keypoints["attention"], out_old["attention"], atol=1e-7)

    plain = LocalHead(num_classes=3, feature_dim=8, use_autoencoder=False, attention_filters=6)
    out = plain(S, training=False)
    assert "reconstruction" not in out
    np.testing.assert_array_equal(out["local_descriptors"], S)
    np.testing.assert_allclose(out["attention"], plain.attention(S, training=False)[0], atol=1e-6)


@pytest.mark.parametrize(
    "make_layer",
    [
        lambda: Autoencoder(5, 8, name="ae"),
        lambda: Attention(6, synchronized_bn=True, name="att"),
        lambda: LocalHead(3, 8, autoencoder_dim=5, attention_filters=6, name="lh"),
        lambda: LocalHead(3, 8, use_autoencoder=False, attention_filters=6, name="lh2"),
        lambda: LocalHead(3, 8, autoencoder_dim=5, attention_wiring="pre_2021", name="lh3"),
    ],
)
def test_serialization_round_trip_and_mixed_precision(make_layer):
    check_layer(make_layer, [S], {"training": False})


def test_training_mode_updates_attention_batch_norm_statistics():
    att = Attention(4)
    att(S, training=False)
    before = att.bn.moving_mean.numpy().copy()
    att(tf.constant(S), training=True)
    assert not np.allclose(att.bn.moving_mean.numpy(), before)


def test_unknown_wiring_is_refused():
    with pytest.raises(ValueError, match="attention_wiring='official'; expected one of"):
        LocalHead(3, 8, attention_wiring="official")
