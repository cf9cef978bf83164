"""A resumed run keeps the attention wiring it was trained with."""

from __future__ import annotations

import json
import os

import pytest

from delg_tf.models import attention_wiring
from delg_tf.training import preflight, trainer


def _drop_key(path: str, key: str) -> None:
    with open(path) as f:
        data = json.load(f)
    del data[key]
    with open(path, "w") as f:
        json.dump(data, f)


def test_run_from_before_the_wiring_was_recorded_resumes_pre_2021(make_config, monkeypatch):
    config = make_config(max_iters=2, save_interval=2, report_interval=2)
    trainer.train(config)
    # Make the logdir look like one written before the wiring was recorded.
    _drop_key(os.path.join(config.logdir, "model_config.json"), "attention_wiring")
    _drop_key(os.path.join(config.logdir, "train_config.json"), "attention_wiring")
    monkeypatch.setattr(attention_wiring, "_warned", False)

    resumed = trainer.Trainer(make_config(max_iters=4, save_interval=2, report_interval=2))
    assert resumed.current_step == 2
    assert resumed.model.attention_wiring == "pre_2021"
    assert resumed.config.model.attention_wiring == "pre_2021"
    with open(os.path.join(config.logdir, "model_config.json")) as f:
        assert json.load(f)["attention_wiring"] == "pre_2021"  # now recorded
    assert attention_wiring._warned


def test_resuming_with_another_wiring_is_refused(make_config):
    config = make_config(max_iters=2, save_interval=2, report_interval=2)
    trainer.train(config)
    with pytest.raises(
        preflight.FlagError,
        match=r"--attention_wiring=pre_2021 differs from the run in .* \(paper\)",
    ):
        trainer.Trainer(make_config(max_iters=4, attention_wiring="pre_2021"))
