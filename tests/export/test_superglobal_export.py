"""A SuperGlobal-pooling export: recorded in its settings, computed in its graph, extracted."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from delg_tf.data.preprocessing import normalize_image
from delg_tf.export.export_settings import read_settings
from delg_tf.export.exporter import export_from_checkpoint, settings_for_model
from delg_tf.export.global_pooling import GlobalPooling
from delg_tf.extraction.extractor import ExtractionOptions, SavedModelExtractor
from tests.helpers.export_fixtures import write_training_logdir  # noqa: E402

POOLING = GlobalPooling(gem_power=4.6, regional_gem=True, scale_aggregation="max")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("sg_export")
    model = write_training_logdir(str(root / "logdir"))
    superglobal = str(root / "superglobal")
    export_from_checkpoint(str(root / "logdir"), superglobal, global_pooling=POOLING)
    return model, superglobal


def _numpy_descriptor(model, image, scale):
    """GeM+ (4.6) of regional-GeM conv5, whitened by the head's dense layer, in numpy."""
    x = normalize_image(tf.constant(image), model.input_normalization)[tf.newaxis]
    size = np.maximum(np.round(np.array(image.shape[:2]) * scale), 1).astype(np.int32)
    conv5 = model(tf.image.resize(x, size), training=False)["conv5"].numpy().astype(np.float64)
    padded = np.pad(conv5, [(0, 0), (2, 2), (2, 2), (0, 0)], mode="reflect")
    window = np.empty_like(conv5)
    for i in range(conv5.shape[1]):
        for j in range(conv5.shape[2]):
            cells = padded[:, i : i + 5, j : j + 5] ** 2.5
            window[:, i, j] = cells.mean(axis=(1, 2)) ** (1 / 2.5)
    regional = np.maximum(0.5 * window + 0.5 * conv5, 1e-6)
    pooled = np.mean(regional**4.6, axis=(1, 2)) ** (1 / 4.6)
    kernel, bias = (w.numpy() for w in model.global_head.embedding.weights)
    return (pooled @ kernel + bias)[0]


def test_settings_record_the_pooling_only_when_asked(exported):
    model, superglobal = exported
    assert settings_for_model(model).global_pooling is None
    assert settings_for_model(model, global_pooling=GlobalPooling()).global_pooling is None
    recorded = read_settings(superglobal).global_pooling
    assert recorded == {
        "gem_power": 4.6,
        "regional_gem": True,
        "regional_power": 2.5,
        "regional_size": 5,
        "scale_aggregation": "max",
    }
    text = open(os.path.join(superglobal, "assets", "delg_export_settings.json")).read()
    assert json.loads(text)["global_pooling"]["gem_power"] == 4.6


def test_graph_computes_superglobal_pooling_and_scale_gem(exported):
    model, superglobal = exported
    image = np.random.default_rng(4).integers(0, 256, [160, 192, 3], dtype=np.uint8)
    settings = read_settings(superglobal)
    loaded = tf.saved_model.load(superglobal)
    raw = loaded.signatures["serving_default"](
        input_image=tf.constant(image),
        input_scales=tf.constant(settings.image_scales),
        input_max_feature_num=tf.constant(0),
        input_abs_thres=tf.constant(0.0),
        input_global_scales_ind=tf.constant(settings.global_scales_ind),
    )["global_descriptors"].numpy()
    scales = [settings.image_scales[i] for i in settings.global_scales_ind]
    expected = np.stack([_numpy_descriptor(model, image, s) for s in scales])
    np.testing.assert_allclose(raw, expected, rtol=2e-4, atol=2e-5)
    per = expected / np.linalg.norm(expected, axis=1, keepdims=True)
    scale_gem = per.max(axis=0) / np.linalg.norm(per.max(axis=0))
    got = loaded.signatures["extract_global"](input_image=tf.constant(image))["global_descriptor"]
    np.testing.assert_allclose(got.numpy(), scale_gem, rtol=1e-4, atol=1e-5)
    # The extractor reads the aggregation from the settings.
    options = ExtractionOptions.from_settings(settings, attention_threshold=0.0)
    assert options.global_aggregation == "max"
    descriptor, _ = SavedModelExtractor(superglobal, options)(image, np.ones(2, np.float32))
    np.testing.assert_allclose(descriptor, scale_gem, rtol=1e-4, atol=1e-5)
    settings.global_pooling = None
    official = ExtractionOptions.from_settings(settings, attention_threshold=0.0)
    assert official.global_aggregation == "sum"
