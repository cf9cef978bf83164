"""delg-train --init_checkpoint: a new run from another run's or an imported model's weights."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from absl import logging
from PIL import Image

from delg_tf.export.official_import import import_official_checkpoint
from delg_tf.training import preflight, trainer
from tests.helpers.official_fixture import extract_official_logdir  # noqa: E402


def _path_map(model):
    return {v.path: v.numpy() for v in model.variables}


def test_fine_tune_from_a_tiny_run_keeps_every_weight_and_starts_at_step_0(make_config, tmp_path):
    source_config = make_config(logdir=str(tmp_path / "source"), max_iters=2, save_interval=2)
    trainer.train(source_config)
    source = trainer.Trainer(make_config(logdir=str(tmp_path / "source"), max_iters=2))
    want = _path_map(source.model)

    # Another embedding size on the command line: the source's architecture wins.
    config = make_config(
        logdir=str(tmp_path / "tuned"), init_checkpoint=str(tmp_path / "source"),
        delg_embedding_layer_dim=32, max_iters=3, save_interval=3, report_interval=3,
    )  # fmt: skip
    tuned = trainer.Trainer(config)
    assert tuned.current_step == 0 and int(tuned.optimizer.iterations.numpy()) == 0
    assert tuned.config.model.embedding_dim == 64
    got = _path_map(tuned.model)
    assert sorted(got) == sorted(want)
    for path, value in want.items():
        np.testing.assert_array_equal(got[path], value, err_msg=path)
    assert all(not np.any(v.numpy()) for v in tuned.optimizer.variables if "momentum" in v.path)
    result = tuned.run()
    assert result.step == 3 and np.isfinite(result.metrics["total"])
    # Resuming the fine-tuned run restores its own checkpoint, not the source's weights.
    again = trainer.Trainer(config)
    assert again.current_step == 3


def test_bad_init_checkpoint_names_the_flag(make_config, tmp_path):
    with pytest.raises(preflight.FlagError, match="--init_checkpoint=.*nothing: no checkpoint"):
        trainer.Trainer(make_config(init_checkpoint=str(tmp_path / "nothing")))
    with pytest.raises(preflight.FlagError, match="give one"):
        trainer.Trainer(make_config(init_checkpoint="x", imagenet_checkpoint="y"))


def _class_folders(root, classes=3, per_class=4, side=72):
    rng = np.random.default_rng(0)
    for c in range(classes):
        os.makedirs(root / f"class_{c}")
        for i in range(per_class):
            pixels = np.clip(rng.normal(60 + 60 * c, 30, (side, side, 3)), 0, 255)
            Image.fromarray(pixels.astype(np.uint8)).save(root / f"class_{c}" / f"{i}.jpg")


def test_fine_tune_the_imported_official_model_on_a_class_folder_set(
    make_config, tmp_path, monkeypatch
):
    official = extract_official_logdir(str(tmp_path / "official"))
    import_official_checkpoint(official, str(tmp_path / "imported"))
    _class_folders(tmp_path / "photos")
    records = tmp_path / "records"
    build = subprocess.run(
        [sys.executable, "-m", "delg_tools.build_tfrecords", f"--image_root={tmp_path / 'photos'}",
         f"--output_directory={records}", "--num_shards=1"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr[-2000:]
    warnings = []
    monkeypatch.setattr(logging, "warning", lambda msg, *args: warnings.append(msg % args))
    config = make_config(
        logdir=str(tmp_path / "tuned"), train_file_pattern=str(records / "train-*"),
        num_classes=3, init_checkpoint=str(tmp_path / "imported"), batch_size=2, max_iters=2,
        save_interval=2, report_interval=1, use_augmentation=False,
    )  # fmt: skip
    tuned = trainer.Trainer(config)
    assert tuned.config.model.backbone == "resnet50_official"
    assert tuned.model.input_normalization == "delf"
    assert tuned.config.model.embedding_dim == 2048
    reader = tf.train.load_checkpoint(
        os.path.join(official, "delf_tf2-ckpt", "ckpt-1")
    )  # the official weights, not a copy of a copy
    kernel = reader.get_tensor("model/backbone/conv1/kernel/.ATTRIBUTES/VARIABLE_VALUE")
    np.testing.assert_array_equal(tuned.model.backbone.get_layer("conv1_conv").kernel, kernel)
    attention = reader.get_tensor("model/attention/conv1/kernel/.ATTRIBUTES/VARIABLE_VALUE")
    np.testing.assert_array_equal(tuned.model.local_head.attention.conv1.kernel, attention)
    # 7 official classes, 3 here: both classifiers start afresh, and the run says so.
    assert tuned.model.arcface.kernel.shape == (2048, 3)
    assert any("7 classes, this run 3" in w for w in warnings), warnings
    assert tuned.current_step == 0
    result = tuned.run()
    assert result.step == 2 and np.isfinite(result.metrics["total"])
