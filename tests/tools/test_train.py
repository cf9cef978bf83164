"""The delg-train binary: flags, flagfiles and the errors that name a bad flag."""

from __future__ import annotations

import csv
import dataclasses
import glob
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from absl import flags
from absl.testing import flagsaver

from delg_tf.data import example_schema
from delg_tf.training import preflight, trainer
from delg_tools import train

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FLAGS = flags.FLAGS


def _records(directory, labels=(0, 1, 2), num_classes=3) -> str:
    os.makedirs(directory, exist_ok=True)
    image = tf.io.encode_jpeg(np.full((40, 40, 3), 128, np.uint8)).numpy()
    with tf.io.TFRecordWriter(os.path.join(directory, "train-00000-of-00001")) as writer:
        for i, label in enumerate(labels):
            writer.write(
                example_schema.make_example(f"{i}", image, 40, 40, label).SerializeToString()
            )
    with open(os.path.join(directory, "relabeling.csv"), "w", newline="") as f:
        rows = csv.writer(f)
        rows.writerow(["new_label", "old_label"])
        rows.writerows([[i, 100 + i] for i in range(num_classes)])
    return os.path.join(directory, "train-*")


def _config(argv):
    with flagsaver.flagsaver():
        FLAGS(["delg-train", *argv])
        return train.config_from_flags(FLAGS)


def test_paper_flagfile_gives_the_paper_settings(tmp_path):
    pattern = _records(str(tmp_path / "data"))
    config = _config(
        [
            f"--flagfile={REPO}/experiments/r50_delg_gldv2_clean.flags",
            f"--train_file_pattern={pattern}",
            f"--logdir={tmp_path / 'log'}",
        ]
    )
    model = config.model
    assert (model.backbone, config.image_size, config.batch_size) == ("resnet50", 512, 256)
    assert (config.initial_lr, config.momentum, config.clip_norm) == (0.01, 0.9, 10.0)
    assert (model.arcface_margin, model.arcface_scale) == (0.1, 45.25)
    assert (model.gem_power, model.embedding_dim) == (3.0, 2048)
    assert (model.autoencoder_dim, model.use_autoencoder) == (128, True)
    assert (config.attention_loss_weight, config.reconstruction_loss_weight) == (1.0, 10.0)
    assert model.num_classes == 3  # from relabeling.csv next to the data
    r101 = _config(
        [
            f"--flagfile={REPO}/experiments/r101_delg_gldv2_clean.flags",
            f"--train_file_pattern={pattern}",
        ]
    )
    assert r101.model.backbone == "resnet101" and r101.image_size == 512


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(REPO, "experiments", "*.flags"))))
def test_every_flagfile_parses(path, tmp_path):
    config = _config([f"--flagfile={path}", f"--train_file_pattern={_records(str(tmp_path))}"])
    assert config.max_iters > 0


def test_official_flag_names_and_int_autoencoder_dimensions(tmp_path):
    pattern = _records(str(tmp_path))
    config = _config(
        [
            f"--train_file_pattern={pattern}",
            "--autoencoder_dimensions=64",
            "--delg_embedding_layer_dim=512",
            "--noblock3_strides",
            "--nouse_augmentation",
            "--dataset_version=gld_v2_clean",
            "--num_classes=3",
        ]
    )
    assert config.model.autoencoder_dim == 64 and not config.model.block3_strides
    assert config.model.embedding_dim == 512
    with pytest.raises(flags.IllegalFlagValueError):
        _config([f"--train_file_pattern={pattern}", "--autoencoder_dimensions=12.5"])


def test_bad_flags_name_the_flag(tmp_path):
    pattern = _records(str(tmp_path / "data"))
    with pytest.raises(
        preflight.FlagError, match=r"--train_file_pattern=/nonexistent/x-\* matches"
    ):
        _config(["--train_file_pattern=/nonexistent/x-*"])
    with pytest.raises(preflight.FlagError, match=r"--num_classes=5 but .*relabeling.csv lists 3"):
        _config([f"--train_file_pattern={pattern}", "--num_classes=5"])
    with pytest.raises(preflight.FlagError, match="--delg_global_features"):
        _config([f"--train_file_pattern={pattern}", "--nodelg_global_features"])
    config = _config(
        [f"--train_file_pattern={pattern}", "--backbone=resnet_tiny", f"--logdir={tmp_path}/l"]
    )
    small = dataclasses.replace(config, image_size=16, strategy="one_device")
    with pytest.raises(preflight.FlagError, match="--image_size=16 is too small for --backbone"):
        trainer.Trainer(small)
    validation = dataclasses.replace(config, validation_file_pattern=f"{tmp_path}/none-*")
    with pytest.raises(preflight.FlagError, match="--validation_file_pattern=.* matches no file"):
        trainer.Trainer(validation)


def test_labels_outside_num_classes_in_the_records_are_caught_before_training(tmp_path):
    pattern = _records(str(tmp_path), labels=(0, 1, 7), num_classes=3)
    config = _config([f"--train_file_pattern={pattern}", "--backbone=resnet_tiny"])
    with pytest.raises(preflight.FlagError, match=r"train-00000-of-00001 record 2 has label 7"):
        trainer.Trainer(config)


def test_binary_exits_with_the_message_before_training(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "delg_tools.train", "--train_file_pattern=/nonexistent/train-*"],
        capture_output=True,
        text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
        timeout=300,
    )
    # Usage error (issue 12): one line naming the flag, exit 2, no traceback.
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "delg-train: --train_file_pattern=/nonexistent/train-* matches no file."
    )
