"""Tests of the demo's stage list and the commands its stages run."""

import functools
import os

import pytest

from delg_tf.demo.figures import write_figures
from delg_tf.demo.paths import Paths
from delg_tf.demo.pipeline import build_stages
from delg_tf.demo.presets import PRESET_SETTINGS

SYNTHETIC_STAGES = [
    "synthetic",
    "tfrecords",
    "train_untrained",
    "train",
    "export_untrained",
    "export_trained",
    "calibrate",
    "extract_untrained_query",
    "extract_untrained_index",
    "extract_trained_query",
    "extract_trained_index",
    "evaluate_untrained",
    "evaluate_trained",
    "training_free",
    "figures",
]


@pytest.fixture
def flagfile(tmp_path):
    path = tmp_path / "demo.flags"
    path.write_text("--initial_lr=0.03\n")
    return str(path)


def _stages(paths, flagfile, preset="tiny", **kwargs):
    args = {"seed": 7, "extra_train_flags": [], "num_shards": None, "num_to_rerank": None}
    args.update(kwargs)
    stages = build_stages(paths, preset, train_flagfile=flagfile, **args)
    return {stage.name: stage for stage in stages}, [stage.name for stage in stages]


def test_synthetic_run_has_every_stage_in_order(tmp_path, flagfile):
    paths = Paths.make(str(tmp_path / "out"), None, None, None)
    stages, names = _stages(paths, flagfile)
    assert names == SYNTHETIC_STAGES
    assert stages["synthetic"].command == [
        "-m",
        "delg_tools.make_synthetic",
        f"--output_dir={paths.synthetic_dir}",
        "--preset=tiny",
        "--seed=7",
    ]
    # Every stage's output is under the output folder, so starting over never deletes user data.
    for stage in stages.values():
        for output in stage.outputs:
            assert output.startswith(paths.output_dir + os.sep), (stage.name, output)


def test_tfrecords_stage_tolerates_skipped_images(tmp_path, flagfile):
    paths = Paths.make(str(tmp_path / "out"), None, None, None)
    stages, _ = _stages(paths, flagfile)
    tfrecords = stages["tfrecords"]
    assert tfrecords.ok_exit_codes == (0, 3)
    assert tfrecords.command[:2] == ["-m", "delg_tools.build_tfrecords"]
    clean_csv = os.path.join(paths.synthetic_dir, "train_clean.csv")
    assert f"--train_clean_csv_path={clean_csv}" in tfrecords.command
    assert f"--num_shards={PRESET_SETTINGS['tiny']['num_shards']}" in tfrecords.command
    assert tfrecords.outputs == (paths.tfrecords_dir,)


def test_overrides_replace_the_preset_values(tmp_path, flagfile):
    paths = Paths.make(str(tmp_path / "out"), None, None, None)
    stages, _ = _stages(
        paths,
        flagfile,
        preset="demo",
        num_shards=5,
        num_to_rerank=42,
        extra_train_flags=["--max_iters=900"],
    )
    assert "--num_shards=5" in stages["tfrecords"].command
    assert "--num_to_rerank=42" in stages["evaluate_trained"].command
    train = stages["train"].command
    # The user's flags come last, so they win over the flagfile and the preset.
    assert train[-3] == "--max_iters=900"
    assert train[:3] == ["-m", "delg_tools.train", f"--flagfile={flagfile}"]


def test_training_stages_share_flags_and_the_flagfile_content(tmp_path, flagfile):
    paths = Paths.make(str(tmp_path / "out"), None, None, None)
    stages, _ = _stages(paths, flagfile)
    untrained, trained = stages["train_untrained"], stages["train"]
    for flag in ("--seed=7", *PRESET_SETTINGS["tiny"]["train_flags"]):
        assert flag in untrained.command and flag in trained.command
    assert untrained.command[-3:] == ["--max_iters=1", "--initial_lr=0", "--deterministic_input"]
    assert "--validation_file_pattern=" in untrained.command
    assert f"--logdir={paths.logdir('trained')}" in trained.command
    assert untrained.identity == trained.identity == {"train_flagfile": "--initial_lr=0.03\n"}
    # Editing the flagfile changes the fingerprint, so a re-run trains again.
    before = trained.fingerprint()
    with open(flagfile, "w") as f:
        f.write("--initial_lr=0.01\n")
    assert _stages(paths, flagfile)[0]["train"].fingerprint() != before


def test_untrained_model_extracts_global_scales_only(tmp_path, flagfile):
    paths = Paths.make(str(tmp_path / "out"), None, None, None)
    stages, _ = _stages(paths, flagfile)
    untrained = stages["extract_untrained_query"].command
    assert "--image_scales=0.70710677,1.0,1.4142135" in untrained
    assert "--global_scales_ind=0,1,2" in untrained
    assert "--attention_threshold=0" in untrained
    trained = stages["extract_trained_index"].command
    assert not any(flag.startswith(("--image_scales", "--attention_threshold")) for flag in trained)
    assert f"--output_features_dir={paths.features('trained', 'index')}" in trained
    assert "--image_set=index" in trained
    assert "--use_geometric_verification" not in stages["evaluate_untrained"].command
    assert "--use_geometric_verification" in stages["evaluate_trained"].command


def test_calibration_targets_depend_on_the_test_set(tmp_path, flagfile):
    synthetic = Paths.make(str(tmp_path / "out"), None, None, None)
    command = _stages(synthetic, flagfile, preset="demo")[0]["calibrate"].command
    assert "--target_features=300" in command and "--max_images=50" in command
    assert f"--model_path={synthetic.export('trained')}" in command
    user = Paths.make(str(tmp_path / "out"), None, str(tmp_path / "gnd.pkl"), str(tmp_path))
    assert (
        "--target_features=1000" in _stages(user, flagfile, preset="demo")[0]["calibrate"].command
    )


def test_user_training_data_replaces_the_synthetic_stage(tmp_path, flagfile):
    gldv2 = tmp_path / "gldv2"
    gldv2.mkdir()
    paths = Paths.make(str(tmp_path / "out"), str(gldv2), None, None)
    stages, names = _stages(paths, flagfile)
    assert names == SYNTHETIC_STAGES[1:]
    # Without train_clean.csv the full train.csv is converted.
    assert f"--train_csv_path={gldv2 / 'train.csv'}" in stages["tfrecords"].command
    (gldv2 / "train_clean.csv").write_text("landmark_id,images\n")
    stages, _ = _stages(paths, flagfile)
    assert f"--train_clean_csv_path={gldv2 / 'train_clean.csv'}" in stages["tfrecords"].command
    assert f"--train_directory={gldv2 / 'train'}" in stages["tfrecords"].command


def test_figures_stage_runs_in_this_process(tmp_path, flagfile):
    paths = Paths.make(str(tmp_path / "out"), None, None, None)
    figures = _stages(paths, flagfile)[0]["figures"]
    assert figures.command is None
    assert isinstance(figures.function, functools.partial)
    assert figures.function.func is write_figures and figures.function.args == (paths,)
    assert figures.identity == {"figures": paths.figures_dir}
    assert figures.outputs == (paths.figures_dir,)
