"""The training loop in-process: learning, the NaN and label guards, resume state, logdir files."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from delg_tf.common.logdir import latest_checkpoint
from delg_tf.models import DelgModel
from delg_tf.training import preflight, trainer
from delg_tf.training.errors import LabelRangeError
from delg_tf.training.train_step import CHECKED_TERMS


def _metrics(logdir: str) -> list[dict]:
    with open(os.path.join(logdir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def test_loss_decreases_and_logdir_follows_the_export_contract(make_config):
    config = make_config(max_iters=40, report_interval=10, save_interval=20)
    result = trainer.train(config)

    assert result.step == 40 and result.stopped_by == "max_iters"
    losses = [m["global_ce"] for m in _metrics(config.logdir) if "global_ce" in m]
    assert [m["step"] for m in _metrics(config.logdir)] == [10, 20, 30, 40]
    # ArcFace CE starts near log(4) * scale-dominated values and must fall clearly.
    assert losses[-1] < 0.5 * losses[0], losses
    assert result.metrics["global_accuracy"] > 0.5
    # The reported rate is the last step's: step s used lr(s - 1) = 0.01 * (1 - (s - 1) / 40).
    lrs = [m["learning_rate"] for m in _metrics(config.logdir)]
    assert lrs == pytest.approx([0.01 * (1 - (s - 1) / 40) for s in (10, 20, 30, 40)], rel=1e-5)

    # Export contract: model_config.json + checkpoints/ with the object name `model`.
    with open(os.path.join(config.logdir, "model_config.json")) as f:
        model_config = json.load(f)
    assert model_config["backbone_weights"] is None
    assert model_config["synchronized_bn"] is False
    prefix = tf.train.latest_checkpoint(os.path.join(config.logdir, "checkpoints"))
    assert prefix.endswith("ckpt-40") and prefix == result.checkpoint
    model = DelgModel.from_config(model_config)
    model(tf.zeros([1, 64, 64, 3]), training=False)
    tf.train.Checkpoint(model=model).read(prefix).expect_partial().assert_existing_objects_matched()
    reader = tf.train.load_checkpoint(prefix)
    assert reader.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE") == 40
    assert trainer.weights_digest(model.trainable_variables) == result.weights_digest

    with open(os.path.join(config.logdir, "train_config.json")) as f:
        assert json.load(f)["max_iters"] == 40


def test_resume_restores_step_weights_slots_and_schedule(make_config):
    config = make_config(max_iters=20, save_interval=10)
    first = trainer.Trainer(config)
    first.run_chunk(10)
    first.save()
    slots = [v.numpy() for v in first.optimizer.variables]
    weights = [v.numpy() for v in first.model.weights]

    resumed = trainer.Trainer(config)
    assert resumed.current_step == 10
    assert int(resumed.optimizer.iterations.numpy()) == 10
    for a, b in zip(weights, resumed.model.weights, strict=True):
        np.testing.assert_array_equal(a, b.numpy())
    for a, b in zip(slots, resumed.optimizer.variables, strict=True):
        np.testing.assert_array_equal(a, b.numpy())
    # The schedule continues from step 10 of 20: lr = 0.01 * (1 - 10/20).
    chunk = resumed.run_chunk(1)
    assert chunk.last["learning_rate"] == pytest.approx(0.005)
    # Both trainers continue from the same input position (the iterator was checkpointed).
    chunk_first = first.run_chunk(1)
    assert chunk.last["total"] == pytest.approx(chunk_first.last["total"], rel=1e-5)


def test_non_finite_loss_stops_naming_step_and_term_and_keeps_good_checkpoint(make_config):
    # A learning rate of 1e30 makes the weights explode after the first update.
    config = make_config(initial_lr=1e30, max_iters=50, save_interval=1, report_interval=1)
    with pytest.raises(trainer.NonFiniteLossError) as error:
        trainer.train(config)
    message = str(error.value)
    assert "Non-finite" in message and "at step" in message
    step = int(message.split("at step ")[1].split()[0])
    assert any(term in message.split("at step")[0] for term in CHECKED_TERMS)
    prefix = latest_checkpoint(config.logdir)
    assert prefix is not None and prefix.endswith(f"ckpt-{step - 1}")
    assert f"ckpt-{step - 1}" in message
    reader = tf.train.load_checkpoint(prefix)
    for name in reader.get_variable_to_shape_map():
        if name.startswith("iterator"):
            continue  # a variant tensor, not numbers
        value = reader.get_tensor(name)
        if isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.floating):
            assert np.all(np.isfinite(value)), name


def test_label_outside_num_classes_stops_in_the_step(make_config, monkeypatch):
    # The records hold labels 0..3; with 3 classes label 3 is out of range. The preflight scan
    # would catch it first, so it is switched off to exercise the guard inside the step.
    monkeypatch.setattr(preflight, "check_labels", lambda *args, **kwargs: 0)
    config = make_config(num_classes=3, max_iters=10, save_interval=5, report_interval=5)
    with pytest.raises(LabelRangeError, match=r"Step 1: \d+ training labels outside"):
        trainer.train(config)
    assert latest_checkpoint(config.logdir) is None


def test_resuming_with_another_model_is_refused(make_config):
    config = make_config(max_iters=2, save_interval=2, report_interval=2)
    trainer.train(config)
    with pytest.raises(
        preflight.FlagError, match=r"--autoencoder_dimensions=8 differs from the run in .* \(16\)"
    ):
        trainer.Trainer(make_config(max_iters=4, autoencoder_dimensions=8))


def test_batch_not_divisible_by_replicas(make_config):
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with pytest.raises(preflight.FlagError, match="--batch_size=7"):
        trainer.Trainer(make_config(batch_size=7), strategy=strategy)


def test_imagenet_checkpoint_is_loaded_before_step_0_and_not_reread_on_resume(
    make_config, tmp_path
):
    from delg_tf.models import get_backbone

    source = get_backbone("resnet_tiny")
    source.set_weights([w + 0.5 for w in source.get_weights()])  # unlike any random init
    path = str(tmp_path / "backbone.weights.h5")
    source.save_weights(path)

    config = make_config(imagenet_checkpoint=path, max_iters=4, save_interval=2)
    fresh = trainer.Trainer(config)
    assert fresh.current_step == 0
    for expected, actual in zip(source.weights, fresh.model.backbone.weights, strict=True):
        np.testing.assert_array_equal(actual.numpy(), expected.numpy())
    fresh.save()

    os.remove(path)  # a resumed run takes the backbone from the checkpoint, not the file
    resumed = trainer.Trainer(config)
    for expected, actual in zip(source.weights, resumed.model.backbone.weights, strict=True):
        np.testing.assert_array_equal(actual.numpy(), expected.numpy())
