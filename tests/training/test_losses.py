"""DELG losses: hand-computed values and replica invariance under MirroredStrategy."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from delg_tf.models import DelgModel
from delg_tf.training.losses import delg_losses


def _outputs(attention_logits, reconstruction, local_features):
    return {
        "attention_logits": tf.constant(attention_logits, tf.float32),
        "reconstruction": tf.constant(reconstruction, tf.float32),
        "local_features": tf.constant(local_features, tf.float32),
    }


def test_hand_computed_values_and_global_batch_normalization():
    # Two examples of a global batch of 4 (the other two are on another replica).
    global_logits = [[0.0, 0.0], [math.log(3.0), 0.0]]  # CE: ln 2 (label 0), ln 4 (label 1)
    attention_logits = [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]  # CE: ln 3 each
    target = np.zeros((2, 1, 2, 2), np.float32)
    reconstruction = np.zeros((2, 1, 2, 2), np.float32)
    reconstruction[0] = 1.0  # per-example MSE 1
    reconstruction[1, 0, 0, 0] = 2.0  # per-example MSE 4 / 4 = 1
    reconstruction[1, 0, 1, 1] = 2.0  # ... plus 1 -> 2
    outputs = _outputs(attention_logits, reconstruction, target)
    labels = tf.constant([0, 1])
    losses = delg_losses(outputs, tf.constant(global_logits), labels, global_batch_size=4)
    want_global = (math.log(2.0) + math.log(4.0)) / 4
    want_attention = 2 * math.log(3.0) / 4
    want_mse = (1.0 + 2.0) / 4
    np.testing.assert_allclose(losses["global_ce"], want_global, rtol=1e-6)
    np.testing.assert_allclose(losses["attention_ce"], want_attention, rtol=1e-6)
    np.testing.assert_allclose(losses["reconstruction_mse"], want_mse, rtol=1e-6)
    np.testing.assert_allclose(
        losses["total"], want_global + 1.0 * want_attention + 10.0 * want_mse, rtol=1e-6
    )
    weighted = delg_losses(
        outputs,
        tf.constant(global_logits),
        labels,
        4,
        attention_loss_weight=0.5,
        reconstruction_loss_weight=2.0,
    )
    np.testing.assert_allclose(
        weighted["total"], want_global + 0.5 * want_attention + 2.0 * want_mse, rtol=1e-6
    )
    assert all(v.dtype == tf.float32 for v in losses.values())


def test_bfloat16_inputs_give_float32_losses():
    outputs = _outputs([[0.0, 1.0]], np.ones((1, 1, 1, 2)), np.zeros((1, 1, 1, 2)))
    outputs = {k: tf.cast(v, tf.bfloat16) for k, v in outputs.items()}
    losses = delg_losses(outputs, tf.constant([[1.0, 0.0]], tf.bfloat16), [0], 1)
    assert all(v.dtype == tf.float32 for v in losses.values())
    np.testing.assert_allclose(losses["reconstruction_mse"], 1.0)


def _model():
    return DelgModel(
        num_classes=4,
        backbone="resnet_tiny",
        embedding_dim=32,
        autoencoder_dim=8,
        attention_filters=16,
        synchronized_bn=True,
    )


def _step(model, images, labels, global_batch_size):
    with tf.GradientTape() as tape:
        outputs = model(images, training=True)
        logits = model.global_logits(outputs["global_descriptor"], labels, training=True)
        losses = delg_losses(outputs, logits, labels, global_batch_size)
    variables = model.trainable_variables
    grads = tape.gradient(losses["total"], variables)
    grads = [tf.zeros_like(v) if g is None else g for g, v in zip(grads, variables, strict=True)]
    return losses, grads


@pytest.mark.timeout(600)
def test_one_and_two_replicas_give_the_same_loss_and_gradients():
    # float64 end to end: in float32 the two runs differ by rounding noise that training-mode
    # BatchNorm on 2x2 conv5 maps amplifies to ~5e-5 relative in some backbone gradients, which
    # would hide what this test is about (normalization by the global batch, synchronized BN).
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float64")
    try:
        _compare_one_and_two_replicas()
    finally:
        keras.config.set_dtype_policy(previous)


def _compare_one_and_two_replicas():
    rng = np.random.default_rng(0)
    images = rng.normal(size=(4, 64, 64, 3))
    labels = np.array([0, 1, 2, 3], np.int32)

    with tf.device("/cpu:0"):
        single = _model()
        single.build((None, None, None, 3))
        weights = single.get_weights()
        losses_1, grads_1 = tf.function(_step)(single, images, labels, 4)
    assert losses_1["total"].dtype == tf.float64

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert strategy.num_replicas_in_sync == 2
    with strategy.scope():
        mirrored = _model()
        mirrored.build((None, None, None, 3))
    mirrored.set_weights(weights)

    def shard(context):
        i = context.replica_id_in_sync_group
        return images[2 * i : 2 * i + 2], labels[2 * i : 2 * i + 2]

    per_replica = strategy.experimental_distribute_values_from_function(shard)

    @tf.function
    def distributed_step(batch):
        result = strategy.run(_step, args=(mirrored, batch[0], batch[1], 4))
        return strategy.reduce("SUM", result, axis=None)  # what the gradient all-reduce does

    losses_2, grads_2 = distributed_step(per_replica)
    for key in losses_1:
        np.testing.assert_allclose(losses_2[key], losses_1[key], rtol=1e-5, err_msg=key)
    assert len(grads_1) == len(grads_2) == len(single.trainable_variables)
    scale = max(float(np.abs(g).max()) for g in grads_1)
    for g1, g2, v in zip(grads_1, grads_2, single.trainable_variables, strict=True):
        # atol: biases followed by BatchNorm have analytically zero gradients.
        np.testing.assert_allclose(g2, g1, rtol=1e-5, atol=1e-9 * scale, err_msg=v.path)
    # The reconstruction term is a real part of the loss (the official per-replica mean would
    # double it with two replicas).
    assert float(losses_1["reconstruction_mse"]) > 0
