"""Receptive fields computed from the layer graph: hand-made graphs and a perturbation check."""

import keras
import numpy as np
import pytest

from delg_tf.models import ReceptiveField, compute_receptive_field, get_backbone


def _model(outputs_fn):
    inputs = keras.Input((None, None, 1))
    return keras.Model(inputs, {"out": outputs_fn(inputs)})


def test_chain_matches_hand_computation():
    # pad 3 + 7x7/2 -> r 7, S 2, P 3; pad 1 + 3x3/2 pool -> r 11, S 4, P 5; 3x3 same -> r 19, P 9.
    def net(x):
        x = keras.layers.ZeroPadding2D(3)(x)
        x = keras.layers.Conv2D(1, 7, strides=2)(x)
        x = keras.layers.ZeroPadding2D(1)(x)
        x = keras.layers.MaxPooling2D(3, strides=2)(x)
        return keras.layers.Conv2D(1, 3, padding="same")(x)

    assert compute_receptive_field(_model(net), "out") == ReceptiveField(19, 4, 9)


def test_branches_take_the_union():
    # Branch a: 5x5 valid -> r 5, P 0 (covers [i, i+4]); branch b: 3x3 same -> r 3, P 1
    # (covers [i-1, i+1]). Union: [i-1, i+4] -> r 6, P 1.
    def net(x):
        a = keras.layers.Conv2D(1, 5)(x)
        b = keras.layers.Cropping2D(1)(keras.layers.Conv2D(1, 3, padding="same")(x))
        return keras.layers.Add()([a, b])

    # Cropping by 1 shifts b's index by +1: covers [i, i+2] -> union [i, i+4] -> r 5, P 0.
    assert compute_receptive_field(_model(net), "out") == ReceptiveField(5, 1, 0)

    def net2(x):
        a = keras.layers.Conv2D(1, 5, padding="same")(x)  # [i-2, i+2]
        b = keras.layers.Conv2D(1, 7, padding="same")(x)  # [i-3, i+3]
        return keras.layers.Concatenate()([a, b])

    assert compute_receptive_field(_model(net2), "out") == ReceptiveField(7, 1, 3)


def test_dilation_and_strided_same_padding():
    def net(x):
        x = keras.layers.Conv2D(1, 3, dilation_rate=2, padding="same")(x)  # k_eff 5 -> P 2
        return keras.layers.Conv2D(1, 3, strides=2, padding="same")(x)  # TF same: left pad 0

    assert compute_receptive_field(_model(net), "out") == ReceptiveField(7, 2, 2)


def test_unsupported_layers_and_mismatched_strides_raise():
    def dense(x):
        return keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x))

    with pytest.raises(ValueError, match="Cannot compute a receptive field"):
        compute_receptive_field(_model(dense), "out")

    def strides(x):
        return keras.layers.Add()([keras.layers.Conv2D(1, 1, strides=2)(x), x])

    with pytest.raises(ValueError, match="different strides"):
        compute_receptive_field(_model(strides), "out")
    with pytest.raises(ValueError, match="operation"):
        compute_receptive_field(_model(lambda x: x[:, ::2, ::2]), "out")
    with pytest.raises(ValueError, match="no output named"):
        compute_receptive_field(_model(lambda x: x), "missing")


def test_resnet50_matches_the_official_delg_values():
    backbone = get_backbone("resnet50", block3_strides=True)
    # Official DELG export: rf 291, stride 32, padding 145 for conv4 with block3 strides.
    assert backbone.local_receptive_field == ReceptiveField(291, 32, 145)
    assert backbone.conv4_receptive_field == ReceptiveField(291, 16, 145)
    assert backbone.conv5_receptive_field == ReceptiveField(483, 32, 241)
    assert get_backbone("resnet50", block3_strides=False).local_receptive_field == (
        ReceptiveField(291, 16, 145)
    )


def _make_monotone(model: keras.Model) -> None:
    """Positive averaging kernels, zero biases, identity BatchNorm: an impulse spreads over
    exactly its receptive field (every path adds a positive amount, nothing cancels)."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            k = layer.kernel
            layer.kernel.assign(np.full(k.shape, 1.0 / np.prod(k.shape[:3]), np.float32))
            layer.bias.assign(np.zeros(layer.bias.shape, np.float32))
        elif isinstance(layer, keras.layers.BatchNormalization):
            for var, value in ((layer.gamma, 1.0), (layer.beta, 0.0)):
                var.assign(np.full(var.shape, value, np.float32))
            layer.moving_mean.assign(np.zeros(layer.moving_mean.shape, np.float32))
            layer.moving_variance.assign(np.ones(layer.moving_variance.shape, np.float32))


def _check_impulse_support(backbone: keras.Model, height: int, rows: list[int]) -> None:
    """Lights one input row (or column) per image and compares the output rows that change
    with [i * stride - padding, i * stride - padding + size - 1]."""
    _make_monotone(backbone)
    width = 32
    images = np.zeros((len(rows), height, width, 3), np.float32)
    for b, y in enumerate(rows):
        images[b, y, :, :] = 1.0
    transposed = np.transpose(images, (0, 2, 1, 3)).copy()  # lights a column instead
    for batch, axis in ((images, 1), (transposed, 2)):
        outputs = backbone(batch, training=False)
        for key, field in (
            ("conv4", backbone.conv4_receptive_field),
            ("conv5", backbone.conv5_receptive_field),
            ("local", backbone.local_receptive_field),
        ):
            out = np.asarray(outputs[key])
            reduce_axes = (2, 3) if axis == 1 else (1, 3)
            lit = np.any(out > 0, axis=reduce_axes)  # [B, h or w]
            for b, y in enumerate(rows):
                index = np.arange(lit.shape[1])
                start = index * field.stride - field.padding
                expected = (start <= y) & (y <= start + field.size - 1)
                np.testing.assert_array_equal(lit[b], expected, err_msg=f"{key} row {y}")


def test_impulse_support_matches_computed_field_resnet_tiny():
    backbone = get_backbone("resnet_tiny")
    _check_impulse_support(backbone, 224, list(range(0, 224, 7)) + [49, 50, 113, 223])


def test_impulse_support_matches_computed_field_resnet50():
    backbone = get_backbone("resnet50")
    _check_impulse_support(backbone, 320, [0, 1, 130, 145, 146, 161, 300, 319])
