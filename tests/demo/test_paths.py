"""Tests of the demo's folder layout."""

import os

from delg_tf.demo.paths import Paths


def test_synthetic_data_lives_under_the_output_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    paths = Paths.make("out", None, None, None)
    out = str(tmp_path / "out")
    synthetic = os.path.join(out, "data", "synthetic")
    assert paths.output_dir == out
    assert paths.synthetic_dir == synthetic
    assert paths.gldv2_dir == synthetic
    assert paths.tfrecords_dir == os.path.join(out, "data", "tfrecords")
    assert paths.gnd_path == os.path.join(synthetic, "test", "gnd_synthetic.pkl")
    assert paths.images_dir == os.path.join(synthetic, "test", "jpg")
    assert paths.logs_dir == os.path.join(out, "logs")
    assert paths.stages_dir == os.path.join(out, "stages")
    assert paths.figures_dir == os.path.join(out, "figures")


def test_user_data_paths_are_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    paths = Paths.make("out", "gldv2", "gnd_roxford5k.pkl", "jpg")
    assert paths.gldv2_dir == str(tmp_path / "gldv2")
    assert paths.gnd_path == str(tmp_path / "gnd_roxford5k.pkl")
    assert paths.images_dir == str(tmp_path / "jpg")
    # The synthetic folder is still named (unused), so the pipeline can tell the two apart.
    assert paths.synthetic_dir == str(tmp_path / "out" / "data" / "synthetic")


def test_per_model_folders(tmp_path):
    paths = Paths.make(str(tmp_path), None, None, None)
    assert paths.logdir("trained") == str(tmp_path / "train" / "trained")
    assert paths.export("untrained") == str(tmp_path / "export" / "untrained")
    assert paths.features("trained", "query") == str(tmp_path / "features" / "trained" / "query")
    assert paths.evaluation("untrained") == str(tmp_path / "evaluation" / "untrained")
