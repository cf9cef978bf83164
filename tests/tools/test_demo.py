"""End-to-end test of delg-demo at the tiny preset (a subprocess, as `make demo` runs it)."""

import json
import os
import subprocess
import sys

import pytest


def _run_demo(output_dir, *extra):
    return subprocess.run(
        [sys.executable, "-m", "delg_tools.demo", "--tiny", f"--output_dir={output_dir}", *extra],
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("demo")
    result = _run_demo(output_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    return output_dir, result


def test_every_stage_runs_and_is_recorded(demo_run):
    output_dir, result = demo_run
    for stage in ("synthetic", "tfrecords", "input"):
        assert f"[demo] {stage}" in result.stdout
        with open(output_dir / "stages" / f"{stage}.json") as f:
            record = json.load(f)
        assert record["seconds"] > 0
    assert os.path.exists(output_dir / "data" / "tfrecords" / "relabeling.csv")
    assert "2 batches of [4, 64, 64, 3]" in result.stdout


def test_rerun_skips_finished_stages(demo_run):
    output_dir, _ = demo_run
    result = _run_demo(output_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("done before, skipped") == 3


def test_revisited_gnd_without_images_dir_is_a_usage_error(tmp_path):
    result = _run_demo(tmp_path, f"--revisited_gnd={tmp_path / 'gnd.pkl'}")
    assert result.returncode != 0
    assert "--revisited_images_dir" in result.stderr
