import json
import os

import tensorflow as tf

from delg_tf.common import logdir


def _save(directory: str, number: int) -> str:
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(step=tf.Variable(1)), directory, 5)
    return manager.save(checkpoint_number=number)


def test_latest_checkpoint_from_logdir_dir_or_prefix(tmp_path):
    directory = logdir.checkpoint_dir(str(tmp_path))
    assert directory == str(tmp_path / "checkpoints")
    _save(directory, 3)
    prefix = _save(directory, 5)
    assert prefix == os.path.join(directory, "ckpt-5")
    assert logdir.latest_checkpoint(str(tmp_path)) == prefix
    assert logdir.latest_checkpoint(str(tmp_path) + "/") == prefix
    assert logdir.latest_checkpoint(directory) == prefix
    older = os.path.join(directory, "ckpt-3")
    assert logdir.latest_checkpoint(older) == older  # a prefix names itself
    assert logdir.latest_checkpoint(str(tmp_path / "nothing")) is None


def test_model_config_path_next_to_the_checkpoint_or_in_its_logdir(tmp_path):
    prefix = _save(logdir.checkpoint_dir(str(tmp_path)), 1)
    assert logdir.model_config_path(prefix) is None
    in_logdir = tmp_path / "model_config.json"
    in_logdir.write_text("{}")
    assert logdir.model_config_path(prefix) == str(in_logdir)
    beside = tmp_path / "checkpoints" / "model_config.json"
    beside.write_text("{}")
    assert logdir.model_config_path(prefix) == str(beside)  # the nearer one wins


def test_inference_model_config_drops_what_export_must_not_reuse():
    trained = {"backbone_weights": "imagenet", "synchronized_bn": True, "dtype": {"x": 1}, "n": 3}
    assert logdir.inference_model_config(trained) == {
        "backbone_weights": None,
        "synchronized_bn": False,
        "n": 3,
    }
    assert trained["backbone_weights"] == "imagenet"  # the caller's dict is left alone
    assert json.dumps(logdir.inference_model_config({"n": 1}), sort_keys=True) == (
        '{"backbone_weights": null, "n": 1, "synchronized_bn": false}'
    )
