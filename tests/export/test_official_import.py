"""delg-import-official end to end: the binary, its errors, and the export of the import."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from delg_tf.export.export_settings import read_settings
from delg_tf.export.exporter import export_from_checkpoint
from tests.helpers.official_fixture import (  # noqa: E402
    extract_official_logdir,
    fixture_dir,
    load_arrays,
    relative_difference,
)

TOLERANCE = 1e-4


def _import(*flags):
    cmd = [sys.executable, "-m", "delg_tools.import_official", *flags]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def imported_logdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("import")
    official = extract_official_logdir(str(root))
    result = _import(f"--checkpoint={official}", f"--output_dir={root / 'imported'}")
    assert result.returncode == 0, result.stderr[-3000:]
    return str(root / "imported"), official


def _write_checkpoint(prefix, keys):
    """A checkpoint holding `model/<key>` variables of shape [1] (names are what is checked)."""
    root = tf.train.Checkpoint()
    for key in keys:
        node = root
        *parents, leaf = key.split("/")
        for part in ["model", *parents]:
            if not hasattr(node, part):
                setattr(node, part, tf.train.Checkpoint())
            node = getattr(node, part)
        setattr(node, leaf, tf.Variable([0.0]))
    root.write(prefix)


def test_binary_writes_a_logdir_and_refuses_to_overwrite(imported_logdir):
    logdir, official = imported_logdir
    assert sorted(os.listdir(logdir)) == ["checkpoints", "import_record.json", "model_config.json"]
    again = _import(f"--checkpoint={official}", f"--output_dir={logdir}")
    assert again.returncode == 2
    assert again.stderr.strip().splitlines()[-1].startswith("delg-import-official: --output_dir=")
    missing = _import(f"--checkpoint={official}/nothing", f"--output_dir={logdir}_2")
    assert missing.returncode == 2 and "no checkpoint found" in missing.stderr


def test_checkpoint_without_autoencoder_fails_with_one_line_and_status_2(tmp_path):
    with open(os.path.join(fixture_dir(), "keys.txt")) as f:
        keys = [line.split("\t")[0] for line in f]
    suffix = "/.ATTRIBUTES/VARIABLE_VALUE"
    model_keys = [
        k[len("model/") : -len(suffix)]
        for k in keys
        if k.startswith("model/") and "autoencoder" not in k and "OPTIMIZER_SLOT" not in k
    ]
    assert len(model_keys) == 332
    _write_checkpoint(str(tmp_path / "ckpt-1"), model_keys)
    result = _import(f"--checkpoint={tmp_path / 'ckpt-1'}", f"--output_dir={tmp_path / 'out'}")
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("delg-import-official: checkpoint ")
    assert "missing 4 (autoencoder/conv1/bias" in last
    assert not os.path.exists(tmp_path / "out")


def test_export_of_the_import_matches_the_official_export(imported_logdir, tmp_path):
    logdir, _ = imported_logdir
    export_path = str(tmp_path / "saved")
    export_from_checkpoint(logdir, export_path)
    settings = read_settings(export_path)
    assert settings.backbone == "resnet50_official" and settings.input_normalization == "delf"
    assert settings.attention_wiring == "paper"
    # The official export hard-codes padding 145; this stem's true padding is 142.
    assert settings.receptive_field == {"size": 291, "stride": 32, "padding": 142}
    serving = tf.saved_model.load(export_path).signatures["serving_default"]
    inputs, want = load_arrays("inputs.npz"), load_arrays("export_outputs.npz")
    differences = {}
    for i in (0, 1):
        out = serving(
            input_image=tf.constant(inputs[f"in{i}_uint8"]),
            input_scales=tf.constant([1.0]),
            input_max_feature_num=tf.constant(1000),
            input_abs_thres=tf.constant(want[f"in{i}_abs_thres"], tf.float32),
            input_global_scales_ind=tf.constant([0]),
        )
        for name in ("features", "scales", "scores", "global_descriptors"):
            differences[f"in{i}_{name}"] = relative_difference(out[name], want[f"in{i}_{name}"])
        # Same cells, boxes 3 px later (padding 142 instead of the official constant 145).
        differences[f"in{i}_boxes"] = relative_difference(out["boxes"] - 3.0, want[f"in{i}_boxes"])
    print("export max|d|/max|ref|:", {k: f"{v:.2e}" for k, v in sorted(differences.items())})
    assert max(differences.values()) <= TOLERANCE, differences
    np.testing.assert_array_equal(want["in0_scales"], np.ones(55))
