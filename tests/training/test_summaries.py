import glob
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from delg_tf.training import summaries


def test_attention_statistics_known_answers():
    stats = summaries.attention_statistics(np.arange(1, 10, dtype=np.float32).reshape(1, 3, 3, 1))
    assert stats == {
        "min": 1.0,
        "max": 9.0,
        "mean": 5.0,
        "percent_25": 3.0,
        "percent_50": 5.0,
        "percent_75": 7.0,
    }


def test_report_line_and_duration():
    metrics = dict(
        total=1.5,
        global_ce=1.0,
        attention_ce=0.25,
        reconstruction_mse=0.025,
        global_accuracy=0.5,
        attention_accuracy=0.25,
        learning_rate=0.01,
    )
    line = summaries.report_line(100, 1000, metrics, 12.345, 3725)
    assert line.startswith("step 100/1000 | loss 1.5000 (global 1.0000")
    assert "12.35 img/s" in line and line.endswith("ETA 1h02m")
    assert summaries.format_duration(float("nan")) == "?"


def _events(logdir):
    values = {}
    for path in glob.glob(os.path.join(logdir, "train_logs", "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                values[value.tag] = (event.step, value)
    return values


def test_run_log_writes_tensorboard_scalars_images_and_jsonl(tmp_path):
    log = summaries.RunLog(str(tmp_path), chief=True)
    log.scalars(7, {"global_ce": 2.5, "learning_rate": 0.01})
    log.scalars(7, {"global_accuracy": 0.75}, prefix="validation")
    attention = np.random.default_rng(0).uniform(0, 3, (2, 4, 4, 1)).astype(np.float32)
    log.attention(7, attention, np.full((2, 8, 8, 3), 255.0, np.float32))
    log.record({"step": 7, "global_ce": 2.5})
    log.close()

    events = _events(str(tmp_path))
    step, value = events["loss/desc/crossentropy"]
    assert step == 7 and value.metadata.plugin_data.plugin_name == "scalars"
    assert tf.make_ndarray(value.tensor) == pytest.approx(2.5)
    assert "validation/global_accuracy" in events and "attention/percent_50" in events
    _, image = events["batch_attention"]
    assert image.metadata.plugin_data.plugin_name == "images"
    blobs = tf.make_ndarray(image.tensor)
    assert blobs[0] == b"4" and blobs[1] == b"4" and len(blobs) == 4
    assert tf.io.decode_png(blobs[2]).shape == (4, 4, 1)
    with open(tmp_path / "metrics.jsonl") as f:
        assert json.loads(f.readline()) == {"global_ce": 2.5, "step": 7}


def test_non_chief_writes_nothing(tmp_path):
    log = summaries.RunLog(str(tmp_path), chief=False)
    log.scalars(1, {"global_ce": 1.0})
    log.attention(1, np.ones((1, 2, 2, 1)), None)
    log.record({"step": 1})
    log.close()
    assert os.listdir(tmp_path) == []


def test_metrics_log_goes_through_gfile_and_keeps_earlier_complete_lines():
    # ram:// is a tf.io.gfile filesystem that builtin open() cannot reach, like gs://.
    logdir = "ram://summaries_test/run"
    tf.io.gfile.makedirs(logdir)
    path = f"{logdir}/metrics.jsonl"
    with tf.io.gfile.GFile(path, "w") as f:
        f.write('{"step": 1}\n{"step": 2, "tot')  # an earlier run cut mid-line
    log = summaries.RunLog(logdir, chief=True)
    log.record({"step": 3, "total": 1.5})
    with tf.io.gfile.GFile(path) as f:
        assert f.read() == '{"step": 1}\n{"step": 3, "total": 1.5}\n'
    log.record({"step": 4, "validation": {"global_accuracy": 0.5}})
    log.close()
    with tf.io.gfile.GFile(path) as f:
        lines = [json.loads(line) for line in f.read().splitlines()]
    assert [entry["step"] for entry in lines] == [1, 3, 4]
    assert tf.io.gfile.listdir(logdir) == ["metrics.jsonl", "train_logs"]  # no temporary left
