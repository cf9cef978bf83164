"""Backbone registry: parameter counts, named outputs, shapes, weight files."""

import keras
import numpy as np
import pytest

from delg_tf.models import BACKBONES, get_backbone


def test_registry_lists_the_backbones():
    assert set(BACKBONES) == {"resnet50", "resnet101", "resnet50_official", "resnet_tiny"}
    with pytest.raises(ValueError, match="Unknown backbone 'resnet18'"):
        get_backbone("resnet18")


@pytest.mark.parametrize(
    "name, total, trainable, normalization",
    [
        # keras.applications include_top=False counts (BN moving statistics non-trainable).
        ("resnet50", 23_587_712, 23_534_592, "caffe"),
        ("resnet101", 42_658_176, 42_552_832, "caffe"),
        # Same layers as keras.applications ResNet50; only padding, epsilon and input differ.
        ("resnet50_official", 23_587_712, 23_534_592, "delf"),
    ],
)
def test_keras_resnet_parameter_counts(name, total, trainable, normalization):
    backbone = get_backbone(name)  # built on a [None, None, None, 3] input: no forward pass
    assert backbone.count_params() == total
    assert sum(int(np.prod(v.shape)) for v in backbone.trainable_variables) == trainable
    assert backbone.input_normalization == normalization
    assert backbone.output["conv4"].shape[-1] == 1024
    assert backbone.output["conv5"].shape[-1] == 2048
    assert backbone.min_input_size == 32


@pytest.mark.parametrize("block3_strides, local_stride", [(True, 32), (False, 16)])
@pytest.mark.parametrize("size", [(64, 64), (65, 97), (33, 127)])
def test_resnet_tiny_output_shapes(size, block3_strides, local_stride):
    backbone = get_backbone("resnet_tiny", block3_strides=block3_strides)
    assert backbone.input_normalization == "delf"
    assert backbone.local_stride == local_stride
    out = backbone(np.zeros((2, *size, 3), np.float32), training=False)
    h, w = size
    # Padded 7x7/2, padded 3x3/2 pool and 1x1 strided convs: every stride-2 step is a ceil.
    assert out["conv4"].shape == (2, -(-h // 16), -(-w // 16), 256)
    assert out["conv5"].shape == (2, -(-h // 32), -(-w // 32), 512)
    assert out["local"].shape == (2, -(-h // local_stride), -(-w // local_stride), 256)
    if block3_strides:
        # The subsampled conv4 is exactly every other conv4 feature.
        np.testing.assert_array_equal(out["local"], np.asarray(out["conv4"])[:, ::2, ::2])


def test_resnet_tiny_accepts_min_input_size():
    backbone = get_backbone("resnet_tiny")
    size = backbone.min_input_size
    out = backbone(np.zeros((1, size, size, 3), np.float32))
    assert out["conv5"].shape[1:3] == (1, 1)


def test_imagenet_is_refused_for_the_small_backbone():
    with pytest.raises(ValueError, match="no ImageNet weights"):
        get_backbone("resnet_tiny", weights="imagenet")


def test_imagenet_download_failure_points_to_a_local_file(monkeypatch):
    # The real keras.applications path runs up to the download, which fails offline.
    from keras.src.applications import resnet

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: None -- offline")

    monkeypatch.setattr(resnet.file_utils, "get_file", offline)
    with pytest.raises(RuntimeError, match="ImageNet weights of 'resnet50'.*local copy"):
        get_backbone("resnet50", weights="imagenet")


def _randomize(model: keras.Model, seed: int) -> None:
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(size=w.shape).astype(np.float32) for w in model.get_weights()])


@pytest.mark.parametrize("filename", ["tiny.weights.h5", "tiny_full.h5"])
def test_resnet_tiny_weights_file_round_trip(tmp_path, filename):
    source = get_backbone("resnet_tiny")
    _randomize(source, 0)
    path = str(tmp_path / filename)
    if filename.endswith(".weights.h5"):
        source.save_weights(path)  # Keras 3 weights format
    else:
        source.save(path)  # legacy HDF5 (the format of the keras.applications files)
    loaded = get_backbone("resnet_tiny", weights=path)
    for a, b in zip(source.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_resnet50_local_h5_round_trip_and_mismatch(tmp_path):
    # The ImageNet file is a legacy HDF5 of the keras.applications notop model; write one.
    base = keras.applications.ResNet50(include_top=False, weights=None, input_shape=(None, None, 3))
    _randomize(base, 1)
    path = str(tmp_path / "resnet50_notop.h5")
    base.save(path)
    backbone = get_backbone("resnet50", weights=path)
    for a, b in zip(base.get_weights(), backbone.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match=r"does not match backbone 'resnet_tiny'.*arrays"):
        get_backbone("resnet_tiny", weights=path)


@pytest.mark.filterwarnings("ignore:Skipping nested container")
def test_weights_file_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.h5"):
        get_backbone("resnet_tiny", weights=str(tmp_path / "missing.h5"))
    not_h5 = tmp_path / "weights.h5"
    not_h5.write_bytes(b"not an hdf5 file")
    with pytest.raises(ValueError, match="weights.h5 is not a readable HDF5"):
        get_backbone("resnet_tiny", weights=str(not_h5))
    bad_suffix = tmp_path / "weights.ckpt"
    bad_suffix.write_bytes(b"x")
    with pytest.raises(ValueError, match="weights.ckpt"):
        get_backbone("resnet_tiny", weights=str(bad_suffix))
    # Same array count, different shapes: the Keras shape check, re-raised with the file name.
    other = keras.Model(*_same_count_model(len(get_backbone("resnet_tiny").weights)))
    path = str(tmp_path / "other.weights.h5")
    other.save_weights(path)
    with pytest.raises(ValueError, match="other.weights.h5 does not match"):
        get_backbone("resnet_tiny", weights=path)


def _same_count_model(num_arrays: int):
    inputs = keras.Input((None, None, 3))
    x = inputs
    for _ in range(num_arrays // 2):
        x = keras.layers.Conv2D(3, 1)(x)
    assert num_arrays % 2 == 0
    return inputs, x


def test_synchronized_bn_flag_reaches_every_batch_norm():
    backbone = get_backbone("resnet_tiny", synchronized_bn=True)
    bns = [layer for layer in backbone.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert bns and all(layer.synchronized for layer in bns)
    assert not any(
        layer.synchronized
        for layer in get_backbone("resnet_tiny").layers
        if isinstance(layer, keras.layers.BatchNormalization)
    )


def test_backbone_graph_serialization_round_trip():
    backbone = get_backbone("resnet_tiny", synchronized_bn=True)
    clone = keras.Model.from_config(backbone.get_config())
    clone.set_weights(backbone.get_weights())
    images = np.random.default_rng(4).normal(size=(1, 64, 96, 3)).astype(np.float32)
    expected, out = backbone(images), clone(images)
    for key in ("conv4", "conv5", "local"):
        np.testing.assert_allclose(out[key], expected[key], atol=1e-6)
    assert clone.get_layer("conv1_bn").synchronized


def test_official_resnet50_has_the_official_stem_epsilon_and_weights_layout():
    official, keras_app = get_backbone("resnet50_official"), get_backbone("resnet50")
    assert [(v.path, v.shape) for v in official.weights] == [
        (v.path, v.shape) for v in keras_app.weights
    ]
    epsilons = {
        layer.epsilon
        for layer in official.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    }
    assert epsilons == {1e-3}
    assert not any(isinstance(layer, keras.layers.ZeroPadding2D) for layer in official.layers)
    stem = keras.Model(official.input, official.get_layer("pool1_pool").output)
    # 'same' 7x7/2 conv then an unpadded 3x3/2 pool (official): 256 -> 128 -> 63, 225 -> 113 -> 56.
    assert stem(np.zeros((1, 256, 321, 3), np.float32)).shape == (1, 63, 80, 64)
    assert stem(np.zeros((1, 225, 256, 3), np.float32)).shape == (1, 56, 63, 64)
    # Same weights, different function: the stems disagree on the same image.
    keras_app.set_weights(official.get_weights())
    x = np.random.default_rng(0).normal(size=(1, 64, 64, 3)).astype(np.float32)
    a, b = official(x)["conv5"].numpy(), keras_app(x)["conv5"].numpy()
    assert a.shape == b.shape and not np.allclose(a, b, atol=1e-3)
    assert official.local_receptive_field.size == 291
    assert official.local_receptive_field.padding == 142  # official export hard-codes 145
