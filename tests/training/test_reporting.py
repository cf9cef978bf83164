import json
import math

import numpy as np
import pytest

from delg_tf.training.config import TrainConfig
from delg_tf.training.reporting import ProgressReport, window_metrics
from delg_tf.training.train_step import SCALARS, ChunkResult


def _chunk(steps: int, seconds: float, total_per_step: float) -> ChunkResult:
    per_step = {name: 0.0 for name in SCALARS}
    per_step.update(total=total_per_step, global_correct=4.0, attention_correct=2.0)
    per_step.update(grad_norm=3.0, learning_rate=0.5)
    return ChunkResult(
        steps=steps,
        sums={name: value * steps for name, value in per_step.items()},
        last=per_step,
        healthy=True,
        stop=False,
        attention=np.ones((2, 3, 3, 1), np.float32),
        images=np.zeros((1, 8, 8, 3), np.float32),
        seconds=seconds,
    )


def test_window_metrics_known_answer():
    sums = {name: 0.0 for name in SCALARS}
    sums.update(total=6.0, global_ce=3.0, global_correct=12.0, attention_correct=6.0)
    metrics = window_metrics(sums, 3, {"learning_rate": 0.25}, batch_size=8)
    assert metrics["total"] == 2.0 and metrics["global_ce"] == 1.0
    assert metrics["global_accuracy"] == 0.5 and metrics["attention_accuracy"] == 0.25
    assert metrics["learning_rate"] == 0.25


def test_first_call_is_left_out_of_the_throughput_and_windows_restart(tmp_path):
    config = TrainConfig.from_flat(
        dict(
            logdir=str(tmp_path),
            train_file_pattern="unused",
            num_classes=4,
            batch_size=8,
            max_iters=35,
        )
    )
    with ProgressReport(config, chief=True, normalization="delf") as progress:
        progress.add(_chunk(5, 100.0, 1.0))  # traces: not timed
        first = progress.report(5, _chunk(5, 100.0, 1.0))
        progress.add(_chunk(5, 2.0, 2.0))
        progress.add(_chunk(5, 3.0, 4.0))
        second = progress.report(15, _chunk(5, 3.0, 4.0))
    assert math.isnan(first["steps_per_second"]) and first["total"] == 1.0
    # 10 timed steps in 5 s; the window holds only the last two calls.
    assert second["steps_per_second"] == 2.0 and second["images_per_second"] == 16.0
    assert second["total"] == 3.0 and second["global_accuracy"] == 0.5
    with open(tmp_path / "metrics.jsonl") as f:
        lines = [json.loads(line) for line in f]
    assert [line["step"] for line in lines] == [5, 15]
    assert lines[1]["attention_accuracy"] == pytest.approx(0.25)
