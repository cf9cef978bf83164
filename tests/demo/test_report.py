"""Tests of the demo's metrics.json and report.md, from hand-made evaluations and figures."""

import json
import os

import pytest

from delg_tf.demo.paths import Paths
from delg_tf.demo.report import write_demo_report
from delg_tf.demo.report_markdown import text_table
from delg_tf.demo.stages import StageTime
from delg_tf.evaluation.revisited import DEFAULT_KAPPAS as KAPPAS


def _protocol(map_value):
    return {"mAP": map_value, "mP@k": [map_value, map_value / 2, map_value / 4]}


def _write_evaluation(paths, model, metrics):
    os.makedirs(paths.evaluation(model))
    with open(os.path.join(paths.evaluation(model), "metrics.json"), "w") as f:
        json.dump({"kappas": list(KAPPAS), "metrics": metrics}, f)


@pytest.fixture
def paths(tmp_path):
    paths = Paths.make(str(tmp_path / "out"), None, None, None)
    _write_evaluation(paths, "untrained", {"medium": _protocol(0.1), "hard": _protocol(0.05)})
    _write_evaluation(
        paths,
        "trained",
        {
            "medium": _protocol(0.4),
            "hard": _protocol(0.2),
            "medium_after_gv": _protocol(0.5),
            "hard_after_gv": _protocol(0.25),
        },
    )
    os.makedirs(paths.figures_dir)
    for name in ("training_curves.png", "query_matches.png", "attention_0_q.png", "x.txt"):
        open(os.path.join(paths.figures_dir, name), "wb").close()
    return paths


def test_writes_metrics_json_and_returns_the_table(paths):
    times = {"synthetic": StageTime(1.5, ran=False), "figures": StageTime(2.0, ran=True)}
    metrics, table = write_demo_report(paths, "tiny", 3, times)
    with open(os.path.join(paths.output_dir, "metrics.json")) as f:
        assert json.load(f) == metrics
    assert metrics["untrained"]["medium"] == {
        "mAP": 10.0,
        "mP@k": {"1": 10.0, "5": 5.0, "10": 2.5},
    }
    assert metrics["trained_reranked"]["hard"]["mAP"] == 25.0
    assert table == text_table(metrics, KAPPAS)


def test_report_shows_the_table_checks_setup_figures_and_times(paths):
    times = {"synthetic": StageTime(1.5, ran=False), "figures": StageTime(2.0, ran=True)}
    write_demo_report(paths, "tiny", 3, times)
    text = open(os.path.join(paths.output_dir, "report.md"), encoding="utf-8").read()
    assert "| trained network, global search + re-ranking (RANSAC) | 50.00 |" in text
    assert "Training: medium mAP 10.00 -> 40.00 (4.00x the untrained network" in text
    assert "- preset: tiny" in text and "- seed: 3" in text
    assert f"- test set: {paths.gnd_path} (images: {paths.images_dir})" in text
    for name in ("training_curves.png", "query_matches.png", "attention_0_q.png"):
        assert f"(figures/{name})" in text
    assert "x.txt" not in text
    assert "| synthetic | 1.5 (an earlier run) |" in text
    assert "| figures | 2.0 |" in text
    assert "| **total** | **3.5** |" in text


def test_incomplete_evaluation_names_the_file(paths):
    path = os.path.join(paths.evaluation("trained"), "metrics.json")
    with open(path, "w") as f:
        json.dump({"kappas": list(KAPPAS), "metrics": {"medium": _protocol(0.4)}}, f)
    with pytest.raises(ValueError, match="no complete 'hard' metrics"):
        write_demo_report(paths, "tiny", 0, {})
