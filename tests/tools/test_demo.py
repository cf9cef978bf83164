"""End-to-end test of delg-demo at the tiny preset (a subprocess, as `make demo` runs it).

The tiny run trains a few steps only: it checks that every stage runs and that the report and
metrics are complete and sane, not that the network learns (the demo preset's job).
"""

import json
import math
import os
import re
import subprocess
import sys

import pytest
from PIL import Image

from delg_tf.demo.report_markdown import ATTENTION_IMAGES

STAGES = (
    "synthetic",
    "tfrecords",
    "train_untrained",
    "train",
    "export_untrained",
    "export_trained",
    "calibrate",
    "extract_untrained_query",
    "extract_untrained_index",
    "extract_trained_query",
    "extract_trained_index",
    "evaluate_untrained",
    "evaluate_trained",
    "training_free",
    "figures",
)


def _run_demo(output_dir, *extra):
    return subprocess.run(
        [sys.executable, "-m", "delg_tools.demo", "--tiny", f"--output_dir={output_dir}", *extra],
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("demo")
    result = _run_demo(output_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    return output_dir, result


def test_every_stage_runs_with_its_wall_time(demo_run):
    output_dir, result = demo_run
    for stage in STAGES:
        assert re.search(rf"^\[demo\] {stage} +\d+\.\d s", result.stdout, re.MULTILINE), stage
        with open(output_dir / "stages" / f"{stage}.json") as f:
            assert json.load(f)["seconds"] > 0


def test_metrics_json_has_every_row_protocol_and_sane_numbers(demo_run):
    output_dir, result = demo_run
    with open(output_dir / "metrics.json") as f:
        metrics = json.load(f)
    assert set(metrics) == {"untrained", "trained_global", "trained_reranked"}
    for row in metrics.values():
        assert set(row) == {"medium", "hard"}
        for protocol in row.values():
            values = [protocol["mAP"], *protocol["mP@k"].values()]
            assert set(protocol["mP@k"]) == {"1", "5", "10"}
            assert all(math.isfinite(v) and 0 <= v <= 100 for v in values), values
    # The table printed at the end holds the same numbers.
    medium = metrics["trained_reranked"]["medium"]["mAP"]
    assert f"{medium:.2f}" in result.stdout.split("[demo] total")[1]


def test_report_shows_the_table_and_valid_pngs(demo_run):
    output_dir, _ = demo_run
    text = (output_dir / "report.md").read_text(encoding="utf-8")
    for title in ("untrained network", "trained network, global search", "re-ranking"):
        assert title in text
    # The training-free table: five first-stage rows, each also + RANSAC.
    assert "## Training-free re-ranking on the demo test set" in text
    for row in ("global", "+aqe", "+dba", "+dba+aqe", "+superglobal"):
        assert f"\n| {row} | " in text and f"\n| {row}+ransac | " in text
    figures = sorted((output_dir / "figures").glob("*.png"))
    names = [p.name for p in figures]
    assert "training_curves.png" in names and "query_matches.png" in names
    assert sum(name.startswith("attention_") for name in names) == ATTENTION_IMAGES
    for path in figures:
        assert f"(figures/{path.name})" in text
        with Image.open(path) as image:
            image.verify()
            assert image.format == "PNG"


def test_rerun_skips_every_finished_stage(demo_run):
    output_dir, _ = demo_run
    result = _run_demo(output_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("done by an earlier run") == len(STAGES)


def test_usage_errors(tmp_path):
    result = _run_demo(tmp_path, f"--revisited_gnd={tmp_path / 'gnd.pkl'}")
    assert result.returncode != 0
    assert "--revisited_images_dir" in result.stderr
    result = _run_demo(tmp_path, f"--train_flagfile={tmp_path / 'none.flags'}")
    assert result.returncode != 0
    assert "none.flags: no such file" in result.stderr
    env = {**os.environ, "DELG_DEMO_PRESET": "huge"}
    result = subprocess.run(
        [sys.executable, "-m", "delg_tools.demo", f"--output_dir={tmp_path}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode != 0
    assert "DELG_DEMO_PRESET='huge'" in result.stderr
