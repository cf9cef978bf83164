"""Every numeric flag of every binary refuses NaN, infinities and negative values (issue 12 item 9).

A refused value stops at flag parsing, before any work, with `delg-<tool>: flag --x=nan: must
be ...` and exit 2 (tools/cli.py). `tests/helpers/numeric_flag_walk.py` imports one binary in its
own process, registers its validators as its entry point does, and tries each bad value on each
of its integer, float and number-list flags.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from tests.helpers.console_scripts import ROOT, console_scripts

SCRIPTS = console_scripts()
# A numeric flag the walk must find per binary (so an empty walk cannot pass).
KNOWN_NUMERIC = {
    "delg-train": "initial_lr",
    "delg-export": "attention_threshold",
    "delg-extract": "max_feature_num",
    "delg-evaluate": "ransac_residual_threshold",
    "delg-build-tfrecords": "validation_split_size",
    "delg-visualize": "top_k",
    "delg-benchmark": "repeats",
    "delg-demo": "num_to_rerank",
    "delg-calibrate-threshold": "target_features",
    "delg-import-official": "delg_gem_power",
    "delg-make-synthetic": "image_size",
}


def _walk(module: str, env=None) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "tests.helpers.numeric_flag_walk", module],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("tool", sorted(SCRIPTS))
def test_every_numeric_flag_refuses_nan_inf_and_negatives(tool):
    result = _walk(SCRIPTS[tool])
    if tool in KNOWN_NUMERIC:
        assert KNOWN_NUMERIC[tool] in result["numeric"], result
    assert result["accepted"] == {}, f"{tool} accepts: {result['accepted']}"


def test_the_walk_reports_an_unchecked_flag(tmp_path):
    (tmp_path / "walk_probe.py").write_text(
        textwrap.dedent(
            """
            from absl import flags
            from delg_tools import cli
            flags.DEFINE_float("checked", 1.0, "")
            flags.DEFINE_float("unchecked", 1.0, "")
            flags.DEFINE_integer("count", 1, "")
            flags.DEFINE_list("scales", ["1.0"], "")
            def run():
                cli.require_positive("checked", "count")
                cli.run(None, tool="probe", module=__name__)
            """
        )
    )
    env = dict(os.environ, PYTHONPATH=f"{tmp_path}{os.pathsep}{ROOT}")
    result = _walk("walk_probe", env)
    assert result["numeric"] == ["checked", "unchecked", "count", "scales"]
    assert result["accepted"] == {
        "unchecked": ["nan", "inf", "-inf", "-1e9"],
        "scales": ["nan", "-1e9"],
    }
