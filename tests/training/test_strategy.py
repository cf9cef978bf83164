import os
import types

import pytest
import tensorflow as tf

from delg_tf.training import strategy as strategy_lib


def test_build_named_strategies():
    assert strategy_lib.build_strategy("default") is tf.distribute.get_strategy()
    one = strategy_lib.build_strategy("one_device", devices=["/cpu:1"])
    assert isinstance(one, tf.distribute.OneDeviceStrategy)
    mirrored = strategy_lib.build_strategy("mirrored", devices=["/cpu:0", "/cpu:1"])
    assert mirrored.num_replicas_in_sync == 2
    with pytest.raises(ValueError, match="--strategy='gpu'"):
        strategy_lib.build_strategy("gpu")


def test_multi_worker_needs_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="TF_CONFIG"):
        strategy_lib.build_strategy("multi_worker")


def _with_task(task_type, task_id):
    resolver = types.SimpleNamespace(task_type=task_type, task_id=task_id)
    return types.SimpleNamespace(cluster_resolver=resolver)


def test_chief_and_worker_write_dirs(tmp_path, monkeypatch):
    assert strategy_lib.is_chief(tf.distribute.get_strategy())
    assert strategy_lib.is_chief(_with_task("worker", 0))
    assert strategy_lib.is_chief(_with_task("chief", 0))
    assert not strategy_lib.is_chief(_with_task("worker", 1))
    directory = str(tmp_path / "ckpt")
    assert strategy_lib.worker_write_dir(directory, _with_task("worker", 0)) == directory
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    os.makedirs(tmp_path / "tmp")
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    other = strategy_lib.worker_write_dir(directory, _with_task("worker", 3))
    assert other.startswith(str(tmp_path / "tmp")) and "worker3" in other
