"""DelgModel: parameter counts, shapes, gradient isolation, serialization, mixed precision."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from delg_tf.models import DelgModel, ReceptiveField
from delg_tf.training.losses import delg_losses

SMALL = dict(backbone="resnet_tiny", embedding_dim=32, autoencoder_dim=8, attention_filters=16)


def _count(variables):
    return sum(int(np.prod(v.shape)) for v in variables)


# Heads at N = 1000 classes on a 1024-ch conv4 / 2048-ch conv5, by hand:
#   embedding 2048*2048 + 2048 = 4,196,352; ArcFace 2048*1000 = 2,048,000;
#   autoencoder 1024*128 + 128 + 128*1024 + 1024 = 263,296;
#   attention conv 1024*512 + 512 = 524,800, BN 4*512 = 2,048 (1,024 non-trainable), conv 513;
#   attention classifier 1024*1000 + 1000 = 1,025,000.  Total 8,060,009, trainable 8,058,985.
@pytest.mark.parametrize(
    "backbone, total, trainable",
    [
        ("resnet50", 23_587_712 + 8_060_009, 23_534_592 + 8_058_985),
        ("resnet101", 42_658_176 + 8_060_009, 42_552_832 + 8_058_985),
    ],
)
def test_parameter_counts_without_a_forward_pass(backbone, total, trainable):
    model = DelgModel(num_classes=1000, backbone=backbone)
    model.build((None, None, None, 3))  # symbolic shapes only
    assert model.count_params() == total
    assert _count(model.trainable_variables) == trainable
    assert model.receptive_field.stride == 32
    assert model.input_normalization == "caffe"


def test_resnet50_receptive_field_and_shapes_at_an_odd_size():
    for block3_strides, stride in ((True, 32), (False, 16)):
        model = DelgModel(num_classes=4, block3_strides=block3_strides)
        assert model.receptive_field == ReceptiveField(291, stride, 145)
        out = model(np.zeros((1, 65, 97, 3), np.float32), training=False)
        assert out["attention"].shape == (1, -(-65 // stride), -(-97 // stride), 1)
        assert out["local_features"].shape[-1] == 1024
        assert out["conv5"].shape == (1, 3, 4, 2048)
        assert out["global_descriptor"].shape == (1, 2048)


@pytest.mark.parametrize("block3_strides, stride", [(True, 32), (False, 16)])
@pytest.mark.parametrize("height, width", [(64, 64), (65, 97), (96, 33), (128, 80)])
def test_output_shapes(height, width, block3_strides, stride):
    model = DelgModel(num_classes=5, block3_strides=block3_strides, **SMALL)
    out = model(np.zeros((2, height, width, 3), np.float32), training=False)
    h, w = -(-height // stride), -(-width // stride)
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "global_descriptor": (2, 32),
        "attention": (2, h, w, 1),
        "attention_logits": (2, 5),
        "local_descriptors": (2, h, w, 8),
        "reconstruction": (2, h, w, 256),
        "local_features": (2, h, w, 256),
        "conv5": (2, -(-height // 32), -(-width // 32), 512),
    }
    assert all(v.dtype == tf.float32 for v in out.values())
    assert float(tf.reduce_min(out["attention"])) >= 0.0  # softplus
    assert model.global_logits(out["global_descriptor"]).shape == (2, 5)


def test_without_autoencoder_descriptors_are_conv4():
    model = DelgModel(num_classes=3, use_autoencoder=False, **SMALL)
    out = model(np.random.default_rng(0).normal(size=(1, 64, 64, 3)), training=False)
    assert "reconstruction" not in out
    np.testing.assert_array_equal(out["local_descriptors"], out["local_features"])
    losses = delg_losses(out, model.global_logits(out["global_descriptor"]), [1], 1)
    assert float(losses["reconstruction_mse"]) == 0.0


def _losses_on_tape(model, images, labels):
    tape = tf.GradientTape(persistent=True)
    with tape:
        out = model(images, training=True)
        logits = model.global_logits(out["global_descriptor"], labels, training=True)
        losses = delg_losses(out, logits, labels, global_batch_size=len(labels))
    return tape, losses


def _all_zero(grads):
    # An unconnected source gets None (= exactly zero). TF's UnconnectedGradients.ZERO cannot be
    # used here: it reads `variable.dtype`, a string for Keras 3 variables.
    return all(g is None or not np.any(g.numpy()) for g in grads)


def test_gradient_isolation():
    model = DelgModel(num_classes=4, **SMALL)
    rng = np.random.default_rng(0)
    images = tf.constant(rng.normal(size=(4, 64, 64, 3)), tf.float32)
    labels = tf.constant([0, 1, 2, 3])
    tape, losses = _losses_on_tape(model, images, labels)
    global_vars = model.backbone.trainable_variables + model.global_head.trainable_variables
    local_vars = model.local_head.trainable_variables
    for name in ("attention_ce", "reconstruction_mse"):
        assert _all_zero(tape.gradient(losses[name], global_vars)), name
        assert not _all_zero(tape.gradient(losses[name], local_vars)), name  # can fail
    assert _all_zero(tape.gradient(losses["global_ce"], local_vars))
    grads = tape.gradient(losses["global_ce"], model.backbone.trainable_variables)
    assert sum(np.count_nonzero(g.numpy()) for g in grads) > 0.5 * _count(grads)
    # The total loss therefore trains the backbone with the ArcFace gradient alone.
    total = tape.gradient(losses["total"], model.backbone.trainable_variables)
    for a, b in zip(total, grads, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)


def test_serialization_round_trip(tmp_path):
    model = DelgModel(num_classes=3, block3_strides=False, gem_trainable=True, **SMALL)
    images = np.random.default_rng(1).normal(size=(2, 64, 96, 3)).astype(np.float32)
    expected = model(images, training=False)
    labels = np.array([0, 2])
    expected_logits = model.global_logits(expected["global_descriptor"], labels, training=True)
    path = str(tmp_path / "delg.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, DelgModel)
    assert loaded.get_config() == model.get_config()
    out = loaded(images, training=False)
    for key in expected:
        np.testing.assert_allclose(out[key], expected[key], atol=1e-5, err_msg=key)
    np.testing.assert_allclose(
        loaded.global_logits(out["global_descriptor"], labels, training=True),
        expected_logits,
        atol=1e-4,
    )
    # Config alone rebuilds the same architecture.
    clone = DelgModel.from_config(model.get_config())
    clone.build((None, None, None, 3))
    assert clone.count_params() == model.count_params()


def test_backbone_weights_file_is_loaded(tmp_path):
    source = DelgModel(num_classes=2, **SMALL)
    source.backbone.set_weights([w + 0.5 for w in source.backbone.get_weights()])
    path = str(tmp_path / "tiny.weights.h5")
    source.backbone.save_weights(path)
    model = DelgModel(num_classes=2, backbone_weights=path, **SMALL)
    for a, b in zip(source.backbone.get_weights(), model.backbone.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert model.get_config()["backbone_weights"] is None


def test_mixed_bfloat16_forward_is_finite():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = DelgModel(num_classes=3, **SMALL)
        images = np.random.default_rng(2).normal(size=(2, 64, 64, 3)).astype(np.float32)
        features = model.backbone(images, training=False)
        assert features["conv5"].dtype == tf.bfloat16  # the body runs in bfloat16
        out = model(images, training=True)
        labels = tf.constant([0, 2])
        logits = model.global_logits(out["global_descriptor"], labels, training=True)
        losses = delg_losses(out, logits, labels, 2)
        assert logits.dtype == tf.float32 and out["attention_logits"].dtype == tf.float32
        for value in [*out.values(), logits, *losses.values()]:
            assert value.dtype == tf.float32
            assert np.all(np.isfinite(value.numpy()))
        assert model.arcface.kernel.dtype == "float32"
    finally:
        keras.config.set_dtype_policy(previous)


def test_runs_in_a_tf_function_at_several_scales():
    model = DelgModel(num_classes=3, **SMALL)
    model.build((None, None, None, 3))  # variables exist before tracing (as export does)

    @tf.function(input_signature=[tf.TensorSpec([None, None, 3], tf.float32)])
    def extract(image):
        out = model(image[tf.newaxis], training=False)
        return out["global_descriptor"], out["attention"]

    for size in ((64, 64), (91, 45), (128, 100)):
        image = np.random.default_rng(3).normal(size=(*size, 3)).astype(np.float32)
        descriptor, attention = extract(image)
        eager = model(image[np.newaxis], training=False)
        np.testing.assert_allclose(descriptor, eager["global_descriptor"], atol=1e-5)
        assert attention.shape == (1, -(-size[0] // 32), -(-size[1] // 32), 1)
    assert extract.experimental_get_tracing_count() == 1  # one trace for every size


def test_learns_a_small_synthetic_batch():
    # 4 classes: a bright square whose position and colour depend on the class.
    rng = np.random.default_rng(0)
    labels = np.arange(16) % 4
    images = rng.normal(0, 0.2, size=(16, 64, 64, 3)).astype(np.float32)
    for i, c in enumerate(labels):
        y, x = (c // 2) * 32 + 8, (c % 2) * 32 + 8
        images[i, y : y + 16, x : x + 16, c % 3] += 1.0
    keras.utils.set_random_seed(0)
    model = DelgModel(num_classes=4, backbone="resnet_tiny", embedding_dim=64)
    optimizer = keras.optimizers.SGD(0.01, momentum=0.9)  # the official optimizer and LR

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            out = model(x, training=True)
            logits = model.global_logits(out["global_descriptor"], y, training=True)
            losses = delg_losses(out, logits, y, 16)
        grads = tape.gradient(losses["total"], model.trainable_variables)
        grads, _ = tf.clip_by_global_norm(grads, 10.0)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return losses

    first = step(images, labels)
    for _ in range(60):
        last = step(images, labels)
    assert float(last["global_ce"]) < 0.05 * float(first["global_ce"])
    assert float(last["attention_ce"]) < 0.9 * float(first["attention_ce"])
    assert float(last["reconstruction_mse"]) < 0.5 * float(first["reconstruction_mse"])
    out = model(images, training=True)  # batch statistics: BN moving averages lag at 60 steps
    logits = model.global_logits(out["global_descriptor"])
    np.testing.assert_array_equal(np.argmax(logits, axis=1), labels)
