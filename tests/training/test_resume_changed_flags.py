"""A resume with a changed run-defining flag either works or is refused in one line naming it.

Issue 12: `delg-train --op_determinism=false`, resumed with `--op_determinism=true`, died with
"No readable checkpoint ... dataset definition has changed" and a traceback; a changed batch or
image size died after the first step with a shape error. The class is every setting the saved
input iterator was built from (`checkpointing.INPUT_FIELDS`, the training files, the replica
count) plus the model-defining ones. One 2-step base run is shared by the module; each case
resumes a copy of it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import tensorflow as tf
from tensorflow.python.framework import config as tf_config

from delg_tf.training import preflight, trainer
from tests.helpers.training_records import tiny_config

STEPS = dict(save_interval=2, report_interval=2, eval_interval=1000)


@pytest.fixture(scope="module")
def base_logdir(tiny_records, tmp_path_factory):
    logdir = str(tmp_path_factory.mktemp("base") / "logdir")
    trainer.train(tiny_config(tiny_records, logdir, max_iters=2, **STEPS))
    return logdir


def _copy(base_logdir, tmp_path):
    logdir = str(tmp_path / "logdir")
    shutil.copytree(base_logdir, logdir)
    return logdir


def _subset_of_the_files(tiny_records, tmp_path):
    folder = tmp_path / "subset"
    folder.mkdir()
    shutil.copy(os.path.join(tiny_records, "train-00000-of-00002"), folder)
    return str(folder / "train-*")


@pytest.mark.parametrize(
    "flag, value, old",
    [
        ("op_determinism", True, "False"),
        ("image_size", 80, "64"),
        ("batch_size", 4, "8"),
        ("train_file_pattern", "subset", "2 files, this run matches 1"),
        ("strategy", "mirrored", "1 replicas"),
        ("backbone", "resnet50", "resnet_tiny"),  # model-defining: the existing check
    ],
)
def test_a_changed_flag_that_breaks_the_restore_is_refused_naming_it(
    base_logdir, tiny_records, tmp_path, flag, value, old
):
    logdir = _copy(base_logdir, tmp_path)
    before = {n: open(os.path.join(logdir, n), "rb").read() for n in os.listdir(logdir)
              if os.path.isfile(os.path.join(logdir, n)) and n != "train.lock"}  # fmt: skip
    strategy = None
    if flag == "train_file_pattern":
        value = _subset_of_the_files(tiny_records, tmp_path)
    if flag == "strategy":
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    config = tiny_config(tiny_records, logdir, max_iters=4, **STEPS, **{flag: value})
    with pytest.raises(preflight.FlagError) as caught:
        trainer.Trainer(config, strategy=strategy)
    message = str(caught.value)
    assert message.startswith(f"--{flag}={value}") and "\n" not in message, message
    assert f"differs from the run in {logdir} ({old}" in message, message
    # Refused before anything was written (the lock aside, which records its holder).
    after = {n: open(os.path.join(logdir, n), "rb").read() for n in before}
    assert after == before
    # Nor changed in this process (the public API can only enable determinism).
    assert not tf_config.is_op_determinism_enabled()


@pytest.mark.parametrize(
    "overrides",
    [
        {"use_augmentation": False},
        {"random_flip": True},
        {"deterministic_input": False},
        {"seed": 1},
        # Without the saved iterator the input starts afresh, so its settings may change.
        {"checkpoint_iterator": False, "batch_size": 4, "image_size": 80},
    ],
    ids=lambda o: ",".join(o),
)
def test_a_changed_flag_that_restores_resumes(base_logdir, tiny_records, tmp_path, overrides):
    # Restoring (in the constructor) and the next batch's shape are where the refused flags
    # fail; a full step here costs ~20 s of tracing per case (each of these cases trained on
    # when tried with `trainer.train`).
    logdir = _copy(base_logdir, tmp_path)
    config = tiny_config(tiny_records, logdir, max_iters=3, **STEPS, **overrides)
    resumed = trainer.Trainer(config)
    assert resumed.current_step == 2 and resumed.last_checkpoint.endswith("ckpt-2")
    images, labels = next(resumed.train_iterator)
    size = config.image_size
    assert images.shape == (config.batch_size, size, size, 3) and labels.shape == (
        config.batch_size,
    )


def test_delg_train_refuses_in_one_line_with_exit_2(base_logdir, tiny_records, tmp_path):
    logdir = _copy(base_logdir, tmp_path)
    flags = [
        f"--train_file_pattern={os.path.join(tiny_records, 'train-*')}",
        f"--logdir={logdir}",
        "--backbone=resnet_tiny",
        "--image_size=64",
        "--batch_size=8",
        "--max_iters=4",
        "--delg_embedding_layer_dim=64",
        "--autoencoder_dimensions=16",
        "--num_classes=4",
        "--strategy=one_device",
        "--deterministic_input",
        "--op_determinism",
    ]
    result = subprocess.run(
        [sys.executable, "-m", "delg_tools.train", *flags],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    [line] = [x for x in result.stderr.splitlines() if x.startswith("delg-train:")]
    assert line.startswith(f"delg-train: --op_determinism=True differs from the run in {logdir}")
