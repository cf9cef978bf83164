"""FusedBatchNormalization equals keras.layers.BatchNormalization to float32 rounding."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from delg_tf.models import get_backbone
from delg_tf.models.fused_batch_norm import FusedBatchNormalization, with_fused_batch_norm
from delg_tf.training.training_state import global_dtype_policy

# [B, H, W, C] with a mean and spread far from 0/1, so the statistics matter.
_SHAPE = (4, 5, 3, 6)


def _inputs(seed: int = 0, shape=_SHAPE) -> np.ndarray:
    return np.random.default_rng(seed).normal(2.0, 3.0, shape).astype(np.float32)


def _weights(channels: int, seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    gamma, beta, mean = (rng.normal(1.0, 0.3, channels).astype(np.float32) for _ in range(3))
    variance = rng.uniform(0.5, 2.0, channels).astype(np.float32)
    return [gamma, beta, mean, variance]


def _pair(**kwargs):
    keras_bn = keras.layers.BatchNormalization(**kwargs)
    fused_bn = FusedBatchNormalization(**kwargs)
    for layer in (keras_bn, fused_bn):
        layer.build(_SHAPE)
        layer.set_weights(_weights(_SHAPE[-1]))
    return keras_bn, fused_bn


def _op_types(fn, *args) -> set[str]:
    graph = tf.function(fn).get_concrete_function(*args).graph
    types = {op.type for op in graph.get_operations()}
    for function in graph._functions.values():  # while/cond bodies, gradients
        types |= {node.op for node in function.definition.node_def}
    return types


def _step(layer, x, training):
    """Outputs and gradients (x, gamma, beta) of sum(y * w) for a fixed w."""
    w = tf.constant(np.random.default_rng(2).normal(size=x.shape), x.dtype)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=training)
        loss = tf.reduce_sum(tf.cast(y, tf.float32) * tf.cast(w, tf.float32))
    grads = tape.gradient(loss, [x, layer.gamma, layer.beta])
    return [np.asarray(tf.cast(t, tf.float32)) for t in [y, *grads]]


@pytest.mark.parametrize("training", [True, False])
def test_outputs_gradients_and_moving_statistics_equal_keras(training):
    keras_bn, fused_bn = _pair(momentum=0.9, epsilon=1.001e-5)
    for seed in range(3):  # three updates of the moving statistics
        x = tf.constant(_inputs(seed))
        expected, got = _step(keras_bn, x, training), _step(fused_bn, x, training)
        for name, e, g in zip(["y", "dx", "dgamma", "dbeta"], expected, got, strict=True):
            np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-5, err_msg=name)
    for e, g in zip(keras_bn.get_weights(), fused_bn.get_weights(), strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-6, atol=1e-6)
    initial = _weights(_SHAPE[-1])
    # Training moved the moving statistics (by the biased variance: checked against Keras
    # above); inference left them alone.
    moved = not np.allclose(fused_bn.get_weights()[3], initial[3])
    assert moved == training
    # The fused kernel ran (and its fused gradient), not the parent's moments path.
    x = tf.constant(_inputs())
    types = _op_types(lambda x: _step_graph(fused_bn, x, training), x)
    assert "FusedBatchNormV3" in types
    assert "FusedBatchNormGradV3" in types
    assert not {"Mean", "SquaredDifference"} & types


def _step_graph(layer, x, training):
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=training)
        loss = tf.reduce_sum(tf.square(y))
    return tape.gradient(loss, [x, layer.gamma])


def test_moving_variance_uses_the_biased_batch_variance():
    layer = FusedBatchNormalization(momentum=0.5, epsilon=1e-3)
    x = _inputs()
    layer(x, training=True)
    flat = x.reshape(-1, _SHAPE[-1]).astype(np.float64)
    np.testing.assert_allclose(layer.moving_mean.numpy(), 0.5 * flat.mean(0), rtol=1e-5)
    # 0.5 * 1 (initial) + 0.5 * biased variance (ddof=0), not the kernel's n/(n-1) one.
    np.testing.assert_allclose(layer.moving_variance.numpy(), 0.5 + 0.5 * flat.var(0), rtol=1e-5)


def test_mixed_bfloat16_matches_keras_and_computes_in_bfloat16():
    with global_dtype_policy("mixed_bfloat16"):
        keras_bn, fused_bn = _pair()
    x = tf.cast(tf.constant(_inputs()), tf.bfloat16)
    for training in (True, False):
        expected, got = _step(keras_bn, x, training), _step(fused_bn, x, training)
        for name, e, g in zip(["y", "dx", "dgamma", "dbeta"], expected, got, strict=True):
            # bfloat16 keeps 8 mantissa bits; both sides round x and y to it.
            np.testing.assert_allclose(g, e, rtol=2e-2, atol=3e-2 * np.abs(e).max(), err_msg=name)
    assert fused_bn(x, training=False).dtype == tf.bfloat16
    assert fused_bn.moving_mean.dtype == tf.float32
    for e, g in zip(keras_bn.get_weights(), fused_bn.get_weights(), strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-2, atol=1e-2)
    assert "FusedBatchNormV3" in _op_types(lambda x: fused_bn(x, training=True), x)


def test_synchronized_under_two_replicas_equals_one_device_keras():
    x = _inputs(shape=(8, 3, 3, 6))
    with tf.device("/cpu:0"):
        reference = keras.layers.BatchNormalization(momentum=0.5)
        expected = reference(x, training=True).numpy()
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        layer = FusedBatchNormalization(momentum=0.5, synchronized=True)
        layer.build(x.shape)
    dataset = tf.data.Dataset.from_tensor_slices(x).batch(8)
    batch = next(iter(strategy.experimental_distribute_dataset(dataset)))

    @tf.function
    def step(x):
        return strategy.run(lambda x: layer(x, training=True), args=(x,))

    outputs = np.concatenate(
        [t.numpy() for t in strategy.experimental_local_results(step(batch))], axis=0
    )
    np.testing.assert_allclose(outputs, expected, rtol=1e-5, atol=1e-5)
    # Cross-replica statistics: the mean over all 8 images, not each replica's 4.
    np.testing.assert_allclose(
        layer.moving_mean.numpy(), reference.moving_mean.numpy(), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        layer.moving_variance.numpy(), reference.moving_variance.numpy(), rtol=1e-5
    )


def test_config_round_trip_keeps_the_class_and_the_keras_config():
    layer = FusedBatchNormalization(momentum=0.97, epsilon=1e-3, name="conv1_bn")
    layer.build(_SHAPE)
    layer.set_weights(_weights(_SHAPE[-1]))
    restored = keras.layers.deserialize(keras.layers.serialize(layer))
    assert type(restored) is FusedBatchNormalization
    assert restored.get_config() == layer.get_config()
    assert layer.get_config() == keras.layers.BatchNormalization(**layer.get_config()).get_config()
    if not restored.built:
        restored.build(_SHAPE)
    restored.set_weights(layer.get_weights())
    x = _inputs()
    np.testing.assert_array_equal(restored(x).numpy(), layer(x).numpy())


def test_with_fused_batch_norm_keeps_names_weights_and_outputs():
    keras.utils.set_random_seed(0)
    plain = get_backbone("resnet_tiny", fused_batch_norm=False)
    model = keras.Model(plain.input, plain.output["conv5"])
    for layer in model.layers:  # non-trivial moving statistics
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(np.full(layer.moving_mean.shape, 0.1, np.float32))
    fused = with_fused_batch_norm(model)
    assert [layer.name for layer in fused.layers] == [layer.name for layer in model.layers]
    assert [v.path for v in fused.weights] == [v.path for v in model.weights]
    bns = [layer for layer in fused.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert bns and all(type(layer) is FusedBatchNormalization for layer in bns)
    x = _inputs(shape=(2, 64, 64, 3))
    np.testing.assert_allclose(fused(x).numpy(), model(x).numpy(), rtol=1e-4, atol=1e-4)


def test_keras_applications_weights_load_into_the_fused_backbone(tmp_path):
    keras.utils.set_random_seed(0)
    plain = keras.applications.ResNet50(
        include_top=False, weights=None, input_shape=(None, None, 3)
    )
    for layer in plain.layers:  # as trained weights have: moving statistics away from 0/1
        if isinstance(layer, keras.layers.BatchNormalization):
            channels = layer.moving_mean.shape[0]
            layer.moving_mean.assign(np.random.default_rng(0).normal(0, 0.1, channels))
            layer.moving_variance.assign(np.random.default_rng(1).uniform(0.5, 1.5, channels))
    path = str(tmp_path / "resnet50_notop.weights.h5")
    plain.save_weights(path)
    backbone = get_backbone("resnet50", weights=path, block3_strides=False)
    bns = [layer for layer in backbone.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(bns) == 53 and all(type(layer) is FusedBatchNormalization for layer in bns)
    x = np.random.default_rng(2).uniform(-1, 1, (1, 64, 64, 3)).astype(np.float32)
    expected = plain(x, training=False).numpy()
    got = backbone(x, training=False)["conv5"].numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
