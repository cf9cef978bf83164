"""delg-train on TFDS datasets: mock data (nothing downloaded) and a tiny dataset prepared here.

`tfds.testing.mock_data` patches TFDS inside this process, so the runs are in-process: the
binary's `main` with parsed flags, or the library's `Trainer`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from absl import flags
from absl.testing import flagsaver

from delg_tf.common.logdir import latest_checkpoint
from delg_tf.training import preflight, trainer
from delg_tf.training.config import TrainConfig
from delg_tf.training.inputs import TrainingInput, is_serializable
from delg_tools import train

FLAGS = flags.FLAGS
COLOURS = np.array([[220, 40, 40], [40, 200, 40], [40, 40, 220]], np.uint8)

SMALL_MODEL = [
    "--backbone=resnet_tiny",
    "--image_size=32",
    "--batch_size=4",
    "--delg_embedding_layer_dim=32",
    "--autoencoder_dimensions=8",
]


class DelgTestColours(tfds.core.GeneratorBasedBuilder):
    """Three flat-colour classes; `group` is an integer feature with no class count."""

    VERSION = tfds.core.Version("1.0.0")
    # No source package to look for checksums or metadata in: TFDS's lookup fails on modules
    # imported by pytest's importlib mode.
    code_path = None

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {
                    "photo": tfds.features.Image(shape=(None, None, 3)),
                    "landmark": tfds.features.ClassLabel(num_classes=3),
                    "group": tfds.features.Tensor(shape=(), dtype=np.int64),
                }
            ),
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing to download
        return {"train": self._generate_examples(24), "test": self._generate_examples(6)}

    def _generate_examples(self, count):
        rng = np.random.default_rng(count)
        for i in range(count):
            noise = rng.integers(0, 30, (40, 40, 3), dtype=np.uint8)
            yield i, {"photo": COLOURS[i % 3] + noise, "landmark": i % 3, "group": i % 2}


@pytest.fixture(scope="module")
def colours_dir(tmp_path_factory) -> str:
    data_dir = str(tmp_path_factory.mktemp("tfds"))
    tfds.builder("delg_test_colours", data_dir=data_dir).download_and_prepare()
    return data_dir


def _config_from_flags(argv: list[str]) -> TrainConfig:
    with flagsaver.flagsaver():
        FLAGS(["delg-train", *argv])
        return train.config_from_flags(FLAGS)


def test_delg_train_on_mock_mnist_takes_num_classes_from_the_builder(tmp_path):
    logdir = str(tmp_path / "run")
    argv = [
        f"--logdir={logdir}",
        "--tfds_name=mnist",  # grayscale 28x28: read as RGB and resized to 32
        f"--tfds_data_dir={tmp_path / 'tfds'}",
        "--tfds_validation_split=test",
        *SMALL_MODEL,
        "--max_iters=4",
        "--save_interval=2",
        "--report_interval=2",
        "--eval_interval=4",
        "--eval_batches=2",
        "--strategy=mirrored",  # the 2 logical CPUs of tests/conftest.py
        "--deterministic_input",
    ]
    with tfds.testing.mock_data(num_examples=16), flagsaver.flagsaver():
        FLAGS(["delg-train", *argv])
        train.main(["delg-train"])

    with open(os.path.join(logdir, "train_config.json")) as f:
        saved = json.load(f)
    assert saved["num_classes"] == 10  # mnist's ClassLabel; no --num_classes given
    assert (saved["tfds_name"], saved["tfds_split"], saved["train_file_pattern"]) == (
        "mnist",
        "train",
        "",
    )
    assert "--tfds_name=mnist" in open(os.path.join(logdir, "flags.txt")).read()
    prefix = latest_checkpoint(logdir)
    assert prefix.endswith("ckpt-4")
    variables = dict(tf.train.list_variables(prefix))
    assert tf.train.load_checkpoint(prefix).get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE") == 4
    # Mock data comes from a Python generator: the input restarts on resume instead.
    assert not any(name.startswith("iterator") for name in variables)
    with open(os.path.join(logdir, "metrics.jsonl")) as f:
        entries = [json.loads(line) for line in f]
    reports = [e for e in entries if "total" in e]
    assert [e["step"] for e in reports] == [2, 4]
    for entry in reports:
        for term in ("total", "global_ce", "attention_ce", "reconstruction_mse", "grad_norm"):
            assert math.isfinite(entry[term]), (entry["step"], term)
    # Validation read 2 batches of 4 from the test split.
    assert [e["validation"]["examples"] for e in entries if "validation" in e] == [8]


def test_prepared_tfds_dataset_resumes_from_its_checkpointed_input_position(colours_dir, tmp_path):
    config = TrainConfig.from_flat(
        dict(
            logdir=str(tmp_path / "run"),
            num_classes=3,
            tfds_name="delg_test_colours",
            tfds_data_dir=colours_dir,
            tfds_image_key="photo",
            tfds_label_key="landmark",
            backbone="resnet_tiny",
            image_size=32,
            batch_size=4,
            max_iters=6,
            delg_embedding_layer_dim=32,
            autoencoder_dimensions=8,
            strategy="one_device",
            deterministic_input=True,
        )
    )
    first = trainer.Trainer(config)
    first.run_chunk(3)
    prefix = first.save()
    assert any(name.startswith("iterator") for name, _ in tf.train.list_variables(prefix))

    resumed = trainer.Trainer(config)
    assert resumed.current_step == 3
    # Both continue from the same input position, so the next step's losses agree.
    after_resume = resumed.run_chunk(1)
    uninterrupted = first.run_chunk(1)
    for term in ("total", "global_ce", "attention_ce"):
        assert after_resume.last[term] == pytest.approx(uninterrupted.last[term], rel=1e-5)
        assert math.isfinite(after_resume.last[term])


def test_tfds_pipelines_are_serializable_unless_tfds_reads_through_python(colours_dir, tmp_path):
    config = TrainConfig.from_flat(
        dict(
            logdir=str(tmp_path),
            num_classes=3,
            tfds_name="delg_test_colours",
            tfds_data_dir=colours_dir,
            tfds_image_key="photo",
            tfds_label_key="landmark",
            image_size=32,
            batch_size=4,
        )
    )
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    assert TrainingInput(None, config, strategy, "delf").checkpointable
    with tfds.testing.mock_data(num_examples=4):
        mock = TrainingInput(
            None,
            TrainConfig.from_flat(
                dict(logdir=str(tmp_path), num_classes=10, tfds_name="mnist", image_size=32)
            ),
            strategy,
            "delf",
        )
        assert not mock.checkpointable
        assert not is_serializable(tfds.builder("mnist").as_dataset(split="train"))


def test_num_classes_comes_from_the_label_feature_or_must_agree_with_it(colours_dir):
    base = [
        "--tfds_name=delg_test_colours",
        f"--tfds_data_dir={colours_dir}",
        "--tfds_image_key=photo",
    ]
    config = _config_from_flags([*base, "--tfds_label_key=landmark"])
    assert config.model.num_classes == 3 and config.tfds_image_key == "photo"
    with pytest.raises(preflight.FlagError, match="--num_classes=5 but --tfds_label_key=landmark"):
        _config_from_flags([*base, "--tfds_label_key=landmark", "--num_classes=5"])
    # An integer feature without a class count needs --num_classes.
    with pytest.raises(
        preflight.FlagError, match="--tfds_label_key=group of --tfds_name=delg_test_colours gives"
    ):
        _config_from_flags([*base, "--tfds_label_key=group"])
    assert (
        _config_from_flags([*base, "--tfds_label_key=group", "--num_classes=2"]).model.num_classes
        == 2
    )


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["--tfds_name=mnist", "--train_file_pattern=/data/train-*"],
            r"--tfds_name=mnist and --train_file_pattern=/data/train-\* are both set",
        ),
        (
            ["--tfds_name=mnist", "--validation_file_pattern=/data/val-*"],
            r"--tfds_name=mnist and --validation_file_pattern=/data/val-\* are both set",
        ),
        ([], r"--train_file_pattern is required \(or --tfds_name"),
        (["--tfds_validation_split=test"], "--tfds_validation_split=test needs --tfds_name"),
        (["--tfds_name=mnist", "--tfds_split="], "--tfds_split is empty"),
        (["--tfds_name=mnist", "--tfds_label_key=landmark_id"], r"--tfds_label_key=landmark_id "),
        (["--tfds_name=mnist", "--tfds_image_key=photo"], r"--tfds_image_key=photo .*'image'"),
        (["--tfds_name=no_such_dataset_xyz"], "--tfds_name=no_such_dataset_xyz: no such TFDS"),
    ],
)
def test_bad_tfds_flags_are_named_before_training(argv, message, tmp_path):
    with pytest.raises(preflight.FlagError, match=message):
        _config_from_flags([f"--tfds_data_dir={tmp_path}", *argv])


def test_unprepared_dataset_or_missing_split_fails_before_training(colours_dir, tmp_path):
    empty = str(tmp_path / "empty")
    config = _config_from_flags(
        [
            "--tfds_name=delg_test_colours",
            f"--tfds_data_dir={empty}",
            "--tfds_image_key=photo",
            "--tfds_label_key=landmark",
            f"--logdir={tmp_path / 'run'}",
            *SMALL_MODEL,
        ]
    )
    assert config.model.num_classes == 3  # from the builder's code: its metadata needs no data
    with pytest.raises(
        preflight.FlagError,
        match=(
            rf"--tfds_name=delg_test_colours is not prepared in --tfds_data_dir={empty}; "
            r"delg-train never downloads\. Build it first with `tfds build delg_test_colours"
        ),
    ):
        trainer.Trainer(config)
    missing_split = dataclasses.replace(
        config, tfds_data_dir=colours_dir, tfds_validation_split="validation"
    )
    with pytest.raises(preflight.FlagError, match="--tfds_validation_split=validation for"):
        trainer.Trainer(missing_split)
    assert not os.path.exists(tmp_path / "run")  # nothing was built or written
