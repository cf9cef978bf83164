"""`--help` of every INSTALLED console script (issue 12 item 11).

absl prints the docstring of `__main__` and the flags registered under `sys.argv[0]`; for a
console script both belong to the entry-point wrapper, so `delg-extract --help` printed no
description and no flags while `python -m delg_tools.extract --help` worked. `cli.run` hands
them over; this runs the scripts pip installed next to the interpreter, in parallel pairs.
"""

from __future__ import annotations

import concurrent.futures
import os
import subprocess
import sys

import pytest

from tests.helpers.console_scripts import ROOT as _ROOT
from tests.helpers.console_scripts import console_scripts

SCRIPTS = console_scripts()
# One flag each script must list (defined by its own module).
KEY_FLAG = {
    "delg-build-tfrecords": "--image_root",
    "delg-make-synthetic": "--output_dir",
    "delg-train": "--logdir",
    "delg-export": "--ckpt_path",
    "delg-calibrate-threshold": "--target_features",
    "delg-extract": "--output_features_dir",
    "delg-visualize": "--image_path",
    "delg-evaluate": "--use_geometric_verification",
    "delg-gldv2-metrics": "--predictions_path",
    "delg-benchmark": "--output_json",
    "delg-demo": "--revisited_gnd",
    "delg-import-official": "--checkpoint",
}


def _docstring_first_line(module: str) -> str:
    """The module's docstring's first line, read from its source (no import: flags collide)."""
    package, _, leaf = module.partition(".")
    folder = "tools" if package == "delg_tools" else package
    source = open(os.path.join(_ROOT, folder, *leaf.split(".")) + ".py").read()
    quote = source.index('"""')
    return source[quote + 3 :].lstrip().splitlines()[0].strip()


def _help(name: str) -> subprocess.CompletedProcess:
    script = os.path.join(os.path.dirname(sys.executable), name)
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run(
        [script, "--help"], capture_output=True, text=True, timeout=600, env=env, cwd="/"
    )


@pytest.fixture(scope="module")
def helps():
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        return dict(zip(SCRIPTS, pool.map(_help, SCRIPTS), strict=True))


def test_every_binary_is_covered():
    assert set(KEY_FLAG) == set(SCRIPTS)


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_installed_script_help_shows_description_and_flags(helps, name):
    result = helps[name]
    assert result.returncode == 0, result.stderr[-2000:]
    first_doc_line = _docstring_first_line(SCRIPTS[name])
    assert result.stdout.startswith(first_doc_line), result.stdout[:500]
    assert KEY_FLAG[name] in result.stdout, result.stdout[-2000:]
    # Quiet start (item 13): no TensorFlow/absl start-up lines around the help.
    for noise in ("cpu_feature_guard", "absl::InitializeLog", "oneDNN"):
        assert noise not in result.stdout + result.stderr, (result.stdout + result.stderr)[:2000]
