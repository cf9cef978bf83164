"""The export follows the model's attention wiring; old logdirs export the old wiring."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from delg_tf.data.preprocessing import normalize_image
from delg_tf.export.checkpoint_loading import load_model_from_checkpoint
from delg_tf.export.export_settings import read_settings
from delg_tf.export.exporter import export_from_checkpoint
from tests.helpers.wiring_fixtures import build_seeded_model, forward, seeded_images  # noqa: E402

KNOWN = os.path.join(os.path.dirname(__file__), "..", "models", "data", "pre_2021_wiring.npz")


def write_seeded_logdir(logdir, drop_wiring=False):
    """A training logdir holding the seeded tiny model (optionally an old-style config)."""
    model = build_seeded_model()
    config = model.get_config()
    if drop_wiring:
        del config["attention_wiring"]
    os.makedirs(logdir, exist_ok=True)
    with open(os.path.join(logdir, "model_config.json"), "w") as f:
        json.dump(config, f)
    tf.train.Checkpoint(model=model).write(os.path.join(logdir, "checkpoints", "ckpt-1"))
    with open(os.path.join(logdir, "checkpoints", "checkpoint"), "w") as f:
        f.write('model_checkpoint_path: "ckpt-1"\nall_model_checkpoint_paths: "ckpt-1"\n')
    return model


def _graph_node_names(concrete):
    graph_def = concrete.graph.as_graph_def()
    names = [node.name for node in graph_def.node]
    for function in graph_def.library.function:
        names += [node.name for node in function.node_def]
    return names


@pytest.fixture(scope="module")
def paper_export(tmp_path_factory):
    root = tmp_path_factory.mktemp("paper")
    model = write_seeded_logdir(str(root / "logdir"))
    export_from_checkpoint(str(root / "logdir"), str(root / "saved"))
    return model, str(root / "saved")


@pytest.fixture(scope="module")
def old_export(tmp_path_factory):
    root = tmp_path_factory.mktemp("old")
    write_seeded_logdir(str(root / "logdir"), drop_wiring=True)
    settings = export_from_checkpoint(str(root / "logdir"), str(root / "saved"))
    return str(root / "logdir"), str(root / "saved"), settings


def test_export_keypoints_are_the_top_of_the_attention_on_conv4(paper_export):
    model, path = paper_export
    settings = read_settings(path)
    assert settings.attention_wiring == "paper"
    assert settings.model_config["attention_wiring"] == "paper"
    img = np.random.default_rng(1).integers(0, 256, [130, 161, 3], dtype=np.uint8)
    k = 5
    out = tf.saved_model.load(path).signatures["serving_default"](
        input_image=tf.constant(img),
        input_scales=tf.constant([1.0]),
        input_max_feature_num=tf.constant(k),
        input_abs_thres=tf.constant(0.0),
        input_global_scales_ind=tf.constant([0]),
    )
    # Directly from the model's parts: S, the attention module on S, the encoder on S.
    s = model.backbone(normalize_image(img[np.newaxis], "delf"), training=False)["local"]
    attention = model.local_head.attention(s, training=False)[0].numpy().reshape(-1)
    descriptors = model.local_head.autoencoder.encode(s).numpy().reshape(-1, 16)
    top = np.argsort(-attention, kind="stable")[:k]
    np.testing.assert_allclose(out["scores"].numpy()[:, 0], attention[top], rtol=1e-5)
    np.testing.assert_allclose(out["features"].numpy(), descriptors[top], rtol=1e-5, atol=1e-6)
    width = s.shape[2]
    field = model.receptive_field
    rows, cols = top // width, top % width
    centres = np.stack([rows, cols], 1) * field.stride  # box centres: stride * cell index
    boxes = out["boxes"].numpy()
    np.testing.assert_allclose((boxes[:, :2] + boxes[:, 2:]) / 2, centres, atol=1e-4)


def test_the_extraction_graph_has_no_decoder(paper_export, old_export):
    _, path = paper_export
    loaded = tf.saved_model.load(path)
    for name in ("serving_default", "extract_local", "extract_global"):
        nodes = _graph_node_names(loaded.signatures[name])
        assert any("autoenc_conv1" in n for n in nodes), name  # the encoder is there
        assert not any("autoenc_conv2" in n or "att_fc" in n for n in nodes), name
    # The pre-2021 wiring needs the decoder for its attention, so its export keeps it.
    nodes = _graph_node_names(tf.saved_model.load(old_export[1]).signatures["serving_default"])
    assert any("autoenc_conv2" in n for n in nodes)


def test_old_logdir_loads_and_exports_the_pre_2021_wiring(old_export):
    logdir, saved, settings = old_export
    model, config, _ = load_model_from_checkpoint(logdir)
    assert model.attention_wiring == "pre_2021" and config["attention_wiring"] == "pre_2021"
    with np.load(KNOWN) as want:
        got = forward(model)
        for key in want.files:
            np.testing.assert_allclose(got[key], want[key], rtol=1e-5, atol=1e-6, err_msg=key)
    assert settings.attention_wiring == "pre_2021"
    assert read_settings(saved).model_config["attention_wiring"] == "pre_2021"
    # The export's scores are the old wiring's attention (on the reconstruction).
    pixels = np.clip(np.round(seeded_images()[0] * 128 + 128), 0, 255).astype(np.uint8)
    normalized = normalize_image(pixels[np.newaxis], "delf")
    direct = model(normalized, training=False)["attention"].numpy().reshape(-1)
    out = tf.saved_model.load(saved).signatures["serving_default"](
        input_image=tf.constant(pixels),
        input_scales=tf.constant([1.0]),
        input_max_feature_num=tf.constant(100),
        input_abs_thres=tf.constant(0.0),
        input_global_scales_ind=tf.constant([0]),
    )
    np.testing.assert_allclose(out["scores"].numpy()[:, 0], np.sort(direct)[::-1], rtol=1e-5)
