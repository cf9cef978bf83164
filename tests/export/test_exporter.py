import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from delg_tf.data.preprocessing import normalize_image
from delg_tf.export.checkpoint_loading import load_model_from_checkpoint, resolve_checkpoint
from delg_tf.export.export_settings import read_settings, set_attention_threshold
from delg_tf.export.exporter import export_from_checkpoint
from tests.helpers.export_fixtures import write_training_logdir

OFFICIAL_INPUTS = {
    "input_image": (tf.uint8, [None, None, 3]),
    "input_scales": (tf.float32, [None]),
    "input_max_feature_num": (tf.int32, []),
    "input_abs_thres": (tf.float32, []),
    "input_global_scales_ind": (tf.int32, [None]),
}
OFFICIAL_OUTPUTS = {
    "boxes": [None, 4],
    "features": [None, 8],
    "scales": [None],
    "scores": [None, 1],
    "global_descriptors": [None, 16],
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    model = write_training_logdir(str(root / "logdir"))
    export_path = str(root / "saved")
    export_from_checkpoint(str(root / "logdir"), export_path)
    return model, export_path


def image(h=96, w=128, seed=0):
    return np.random.default_rng(seed).integers(0, 256, [h, w, 3], dtype=np.uint8)


def test_resolve_checkpoint_from_logdir_and_prefix(tmp_path):
    write_training_logdir(str(tmp_path))
    prefix, config = resolve_checkpoint(str(tmp_path))
    assert prefix.endswith("checkpoints/ckpt-1") and config == str(tmp_path / "model_config.json")
    assert resolve_checkpoint(prefix) == (prefix, config)
    with pytest.raises(FileNotFoundError, match="no checkpoint found"):
        resolve_checkpoint(str(tmp_path / "nothing"))


def test_checkpoint_missing_variables_is_an_error(tmp_path):
    model = write_training_logdir(str(tmp_path / "a"))
    # A checkpoint of only the backbone: the heads' variables are missing.
    tf.train.Checkpoint(model=tf.train.Checkpoint(backbone=model.backbone)).write(
        str(tmp_path / "a" / "checkpoints" / "partial")
    )
    with pytest.raises(ValueError, match="partial"):
        load_model_from_checkpoint(str(tmp_path / "a" / "checkpoints" / "partial"))


def test_signature_has_exactly_the_official_names_and_dtypes(exported):
    _, path = exported
    loaded = tf.saved_model.load(path)
    serving = loaded.signatures["serving_default"]
    _, kwargs = serving.structured_input_signature
    assert {k: (v.dtype, v.shape.as_list()) for k, v in kwargs.items()} == OFFICIAL_INPUTS
    outputs = serving.structured_outputs
    assert {k: v.shape.as_list() for k, v in outputs.items()} == OFFICIAL_OUTPUTS
    assert all(v.dtype == tf.float32 for v in outputs.values())
    assert set(loaded.signatures) == {
        "serving_default",
        "extract_global",
        "extract_local",
        "extract_attention_map",
    }


def test_saved_outputs_equal_in_memory_model(exported):
    model, path = exported
    serving = tf.saved_model.load(path).signatures["serving_default"]
    img = image()
    out = serving(
        input_image=tf.constant(img),
        input_scales=tf.constant([1.0]),
        input_max_feature_num=tf.constant(1000),
        input_abs_thres=tf.constant(0.0),
        input_global_scales_ind=tf.constant([0]),
    )
    direct = model(normalize_image(img[np.newaxis], "delf"), training=False)
    # Tolerance 1e-5 relative: same graph and weights, only op scheduling may differ.
    np.testing.assert_allclose(
        out["global_descriptors"].numpy(),
        direct["global_descriptor"].numpy(),
        rtol=1e-5,
        atol=1e-6,
    )
    att = direct["attention"].numpy().reshape(-1)
    np.testing.assert_allclose(out["scores"].numpy()[:, 0], np.sort(att)[::-1], rtol=1e-5)
    order = np.argsort(-att, kind="stable")
    local = direct["local_descriptors"].numpy().reshape(-1, 8)[order]
    np.testing.assert_allclose(out["features"].numpy(), local, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out["scales"].numpy(), np.ones(len(att)))


def test_settings_asset_and_local_signature_threshold(exported, tmp_path):
    _, path = exported
    settings = read_settings(path)
    assert settings.backbone == "resnet_tiny" and settings.local_dim == 8
    assert settings.global_dim == 16 and settings.attention_threshold is None
    assert settings.receptive_field == {"size": 99, "stride": 32, "padding": 49}
    # Calibration edits the asset of a copy; the loaded local signature reads the new value.
    import shutil

    copy = str(tmp_path / "copy")
    shutil.copytree(path, copy)
    loaded = tf.saved_model.load(copy)
    img = tf.constant(image())
    with pytest.raises(tf.errors.InvalidArgumentError, match="delg-calibrate-threshold"):
        loaded.signatures["extract_local"](input_image=img)
    everything = loaded.signatures["serving_default"](
        input_image=img,
        input_scales=tf.constant(settings.image_scales),
        input_max_feature_num=tf.constant(1000),
        input_abs_thres=tf.constant(0.0),
        input_global_scales_ind=tf.constant([4]),
    )
    scores = everything["scores"].numpy()[:, 0]
    threshold = float(np.median(scores))
    set_attention_threshold(copy, threshold)
    local = loaded.signatures["extract_local"](input_image=img)
    assert len(local["attention"]) == np.sum(scores >= np.float32(threshold))
    np.testing.assert_allclose(np.linalg.norm(local["descriptors"], axis=1), 1.0, rtol=1e-5)
    # Keypoints = box centres (the pyramid scale is already divided out of the boxes).
    ref_boxes = everything["boxes"].numpy()[: len(local["attention"])]
    np.testing.assert_allclose(
        local["locations"], (ref_boxes[:, :2] + ref_boxes[:, 2:]) / 2, rtol=1e-6
    )


def test_global_signature_aggregates_default_scales(exported):
    _, path = exported
    loaded = tf.saved_model.load(path)
    img = tf.constant(image(80, 72, seed=3))
    settings = read_settings(path)
    raw = loaded.signatures["serving_default"](
        input_image=img,
        input_scales=tf.constant(settings.image_scales),
        input_max_feature_num=tf.constant(0),
        input_abs_thres=tf.constant(0.0),
        input_global_scales_ind=tf.constant(settings.global_scales_ind),
    )["global_descriptors"].numpy()
    assert raw.shape == (3, 16)
    per = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    expected = per.sum(0) / np.linalg.norm(per.sum(0))
    got = loaded.signatures["extract_global"](input_image=img)["global_descriptor"].numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_export_refuses_to_overwrite(exported):
    _, path = exported
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        export_from_checkpoint(os.path.dirname(path) + "/logdir", path)


def test_loads_and_runs_without_delg_tf(exported):
    _, path = exported
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["delg_tf"] = None  # any import of delg_tf now fails
        import numpy as np
        import tensorflow as tf
        m = tf.saved_model.load({path!r})
        out = m.signatures["serving_default"](
            input_image=tf.zeros([70, 90, 3], tf.uint8),
            input_scales=tf.constant([0.5, 1.0]),
            input_max_feature_num=tf.constant(5),
            input_abs_thres=tf.constant(0.0),
            input_global_scales_ind=tf.constant([1]),
        )
        g = m.signatures["extract_global"](input_image=tf.zeros([70, 90, 3], tf.uint8))
        assert out["features"].shape == (5, 8), out["features"].shape
        assert g["global_descriptor"].shape == (16,)
        assert "delg_tf" not in [k for k, v in sys.modules.items() if v is not None]
        print("OK")
        """
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd="/",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("OK")


def test_bfloat16_export_matches_float32(exported, tmp_path):
    _, path = exported
    bf16_path = str(tmp_path / "bf16")
    settings = export_from_checkpoint(
        os.path.dirname(path) + "/logdir", bf16_path, compute_dtype="bfloat16"
    )
    assert settings.compute_dtype == "bfloat16"
    img = tf.constant(image(64, 96, seed=5))
    g32 = tf.saved_model.load(path).signatures["extract_global"](input_image=img)
    g16 = tf.saved_model.load(bf16_path).signatures["extract_global"](input_image=img)
    a, b = g32["global_descriptor"].numpy(), g16["global_descriptor"].numpy()
    assert g16["global_descriptor"].dtype == tf.float32
    # bfloat16 keeps 8 mantissa bits: unit descriptors agree to a cosine of 0.99.
    assert float(np.dot(a, b)) > 0.99
