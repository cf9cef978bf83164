import json
import os

import numpy as np
import pytest
import tensorflow as tf

from delg_tf.common import logdir as logdir_contract
from delg_tf.training import checkpointing


def _manager(directory, variable):
    checkpoint = tf.train.Checkpoint(step=variable)
    return tf.train.CheckpointManager(checkpoint, directory, max_to_keep=5)


def test_restore_falls_back_to_an_older_checkpoint_when_the_newest_is_damaged(tmp_path):
    directory = str(tmp_path / "ckpt")
    variable = tf.Variable(1.0)
    manager = _manager(directory, variable)
    manager.save(checkpoint_number=1)
    variable.assign(2.0)
    newest = manager.save(checkpoint_number=2)
    for path in tf.io.gfile.glob(newest + ".data-*"):
        with open(path, "r+b") as f:
            f.truncate(1)  # a torn write
    target = tf.Variable(0.0)
    restored = checkpointing.restore_latest({"step": target}, directory)
    assert restored.endswith("ckpt-1") and float(target.numpy()) == 1.0


def test_restore_requires_every_object_except_optional_ones(tmp_path):
    directory = str(tmp_path / "ckpt")
    _manager(directory, tf.Variable(5)).save()
    step, extra = tf.Variable(0), tf.Variable(0)
    assert checkpointing.restore_latest({"step": step, "iterator": extra}, directory, ("iterator",))
    assert int(step.numpy()) == 5
    with pytest.raises(RuntimeError, match="No readable checkpoint"):
        checkpointing.restore_latest({"step": tf.Variable(0), "other": tf.Variable(0)}, directory)
    assert checkpointing.restore_latest({"step": step}, str(tmp_path / "empty")) is None


def test_model_config_for_export_and_finiteness(tmp_path):
    config = {"backbone_weights": "imagenet", "synchronized_bn": True, "dtype": {}, "n": 3}
    path = checkpointing.write_model_config(config, str(tmp_path))
    with open(path) as f:
        assert json.load(f) == {"backbone_weights": None, "synchronized_bn": False, "n": 3}
    assert not os.path.exists(path + ".tmp-" + str(os.getpid()))
    assert checkpointing.all_finite([tf.Variable([1.0, 2.0]), tf.Variable(3)])
    assert not checkpointing.all_finite([tf.Variable([1.0, np.nan])])
    assert not checkpointing.all_finite([tf.Variable([np.inf])])


@pytest.mark.parametrize("logdir", ["runs/x", "./runs/x", "runs/../runs/x"])
def test_restore_from_a_relative_logdir(tmp_path, monkeypatch, logdir):
    # Issue 12 item 1 (class: a logdir given relative to the working directory): the state
    # file's entries were joined with the directory a second time, so no relative run resumed.
    monkeypatch.chdir(tmp_path)
    directory = logdir_contract.checkpoint_dir(logdir)
    variable = tf.Variable(5.0)
    manager = _manager(directory, variable)
    manager.save(checkpoint_number=1)
    variable.assign(7.0)
    manager.save(checkpoint_number=2)
    variable.assign(0.0)
    restored = checkpointing.restore_latest({"step": variable}, directory)
    assert os.path.normpath(restored) == os.path.normpath(os.path.join(directory, "ckpt-2"))
    assert variable.numpy() == 7.0
