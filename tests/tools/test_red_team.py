"""Red team: every binary, run as a subprocess, against bad flags and bad files (issue 12).

Each row of `CASES` is (binary, bad-input class, flags, expected exit code, first-line pattern).
The rule under test (README "Crash safety and bad input"): an ordinary user error is one line
`delg-<tool>: <what is wrong, naming the flag/file and value>` on stderr and exit 2 (usage);
finishing with some inputs refused is exit 3; no input hangs a binary (every case has a timeout).
Cases run two at a time in one fixture (a TF import costs seconds per subprocess).

Run as a script to print the table of observed results (used for the issue's before/after):
  python tests/tools/test_red_team.py [--pythonpath=<checkout with a delg_tools link>]
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

# Long enough for a loaded 2-core machine; a hang (a FIFO read) would block forever.
TIMEOUT_S = float(os.environ.get("RED_TEAM_TIMEOUT_S", "240"))


@dataclasses.dataclass(frozen=True)
class Case:
    tool: str  # console-script name
    bad: str  # the class of bad input
    args: tuple[str, ...]
    code: int
    first_line: str  # regex searched in the first stderr line (after the tool name prefix)


MODULES = {
    "delg-train": "delg_tools.train",
    "delg-export": "delg_tools.export",
    "delg-extract": "delg_tools.extract",
    "delg-calibrate-threshold": "delg_tools.calibrate_threshold",
    "delg-visualize": "delg_tools.visualize",
    "delg-evaluate": "delg_tools.evaluate",
    "delg-gldv2-metrics": "delg_tools.gldv2_metrics",
    "delg-benchmark": "delg_tools.benchmark",
    "delg-demo": "delg_tools.demo",
    "delg-make-synthetic": "delg_tools.make_synthetic",
    "delg-build-tfrecords": "delg_tools.build_tfrecords",
}

_TRAIN = (
    "--train_file_pattern={tfr_corrupt}",
    "--num_classes=3",
    "--backbone=resnet_tiny",
    "--image_size=64",
    "--batch_size=2",
    "--max_iters=2",
    "--logdir={out}",
)
_EXTRACT = ("--model_path={export}", "--output_features_dir={out}")
_EVAL = (
    "--dataset_file_path={gnd}",
    "--query_features_dir={dir}",
    "--index_features_dir={dir}",
    "--output_dir={out}",
)

CASES = (
    # delg-train
    Case("delg-train", "unknown flag", ("--no_such_flag=1",), 2, r"no_such_flag"),
    Case("delg-train", "zero count", (*_TRAIN, "--max_iters=0"), 2, r"--max_iters=0"),
    Case("delg-train", "zero count", (*_TRAIN, "--batch_size=0"), 2, r"--batch_size=0"),
    Case("delg-train", "non-finite float", (*_TRAIN, "--initial_lr=nan"), 2, r"--initial_lr=nan"),
    Case("delg-train", "unknown name", (*_TRAIN, "--backbone=resnet9000"), 2, r"resnet9000"),
    Case("delg-train", "file for a folder", (*_TRAIN, "--logdir={file}"), 2, r"--logdir"),
    Case("delg-train", "corrupt TFRecord", _TRAIN, 2, r"tfr_corrupt|train-corrupt"),
    Case(
        "delg-train",
        "empty TFRecord",
        (*_TRAIN, "--train_file_pattern={tfr_empty}"),
        2,
        r"train-empty",
    ),
    # delg-export
    Case(
        "delg-export",
        "missing file",
        ("--ckpt_path={missing}", "--export_path={out}"),
        2,
        r"--ckpt_path",
    ),
    Case(
        "delg-export",
        "output exists",
        ("--ckpt_path={missing}", "--export_path={dir}"),
        2,
        r"--export_path",
    ),
    Case(
        "delg-export",
        "negative count",
        ("--ckpt_path={missing}", "--export_path={out}", "--max_feature_num=-1"),
        2,
        r"--max_feature_num=-1",
    ),
    # delg-extract
    Case(
        "delg-extract",
        "zero count",
        (*_EXTRACT, "--images_dir={good_dir}", "--shard_size=0"),
        2,
        r"--shard_size=0",
    ),
    Case(
        "delg-extract",
        "missing file",
        (*_EXTRACT, "--image_list={missing}", "--images_dir={good_dir}"),
        2,
        r"missing",
    ),
    Case(
        "delg-extract",
        "two files, one id",
        (*_EXTRACT, "--images_dir={dup_dir}"),
        2,
        r"both give image id",
    ),
    Case(
        "delg-extract",
        "non-finite float",
        (*_EXTRACT, "--images_dir={good_dir}", "--attention_threshold=nan"),
        2,
        r"--attention_threshold=nan",
    ),
    Case(
        "delg-extract",
        "negative count",
        (*_EXTRACT, "--images_dir={good_dir}", "--max_feature_num=-1"),
        2,
        r"--max_feature_num=-1",
    ),
    Case(
        "delg-extract",
        "not a SavedModel",
        ("--model_path={dir}", "--output_features_dir={out}", "--images_dir={good_dir}"),
        2,
        r"--model_path",
    ),
    Case(
        "delg-extract",
        "FIFO and outside symlink",
        (*_EXTRACT, "--images_dir={bad_dir}"),
        3,
        r"",
    ),
    # delg-calibrate-threshold
    Case(
        "delg-calibrate-threshold",
        "zero count",
        ("--model_path={export}", "--images_dir={good_dir}", "--target_features=0"),
        2,
        r"--target_features=0",
    ),
    Case(
        "delg-calibrate-threshold",
        "missing file",
        ("--model_path={export}", "--images_dir={missing}"),
        2,
        r"--images_dir",
    ),
    Case(
        "delg-calibrate-threshold",
        "inconsistent with the export",
        ("--model_path={export}", "--images_dir={good_dir}", "--target_features=5000"),
        2,
        r"--target_features=5000",
    ),
    Case(
        "delg-calibrate-threshold",
        "FIFO and outside symlink",
        ("--model_path={export}", "--images_dir={bad_dir}", "--dry_run", "--target_features=50"),
        3,
        r"",
    ),
    # delg-visualize
    Case(
        "delg-visualize",
        "missing file",
        ("--model_path={export}", "--image_path={missing}", "--output_path={out}.png"),
        2,
        r"missing",
    ),
    Case(
        "delg-visualize",
        "FIFO",
        ("--model_path={export}", "--image_path={fifo}", "--output_path={out}.png"),
        2,
        r"not a regular file",
    ),
    Case(
        "delg-visualize",
        "non-finite float",
        (
            "--model_path={export}",
            "--image_path={image}",
            "--output_path={out}.png",
            "--attention_threshold=inf",
        ),
        2,
        r"--attention_threshold=inf",
    ),
    # delg-evaluate
    Case(
        "delg-evaluate",
        "missing file",
        (*_EVAL, "--dataset_file_path={missing}"),
        2,
        r"missing",
    ),
    Case(
        "delg-evaluate",
        "negative float",
        (*_EVAL, "--ransac_residual_threshold=-1"),
        2,
        r"--ransac_residual_threshold=-1",
    ),
    Case(
        "delg-evaluate",
        "negative float",
        (*_EVAL, "--local_descriptor_matching_threshold=-1"),
        2,
        r"--local_descriptor_matching_threshold=-1",
    ),
    # delg-gldv2-metrics
    Case(
        "delg-gldv2-metrics",
        "missing file",
        ("--predictions_path={missing}", "--solution_path={missing}"),
        2,
        r"missing",
    ),
    # delg-benchmark
    Case(
        "delg-benchmark",
        "folder for a file",
        ("--quick", "--parts=search", "--output_json={dir}"),
        2,
        r"--output_json",
    ),
    Case("delg-benchmark", "zero count", ("--repeats=0",), 2, r"repeats"),
    # delg-demo
    Case(
        "delg-demo",
        "missing file",
        ("--output_dir={out}", "--revisited_gnd={missing}", "--revisited_images_dir={dir}"),
        2,
        r"--revisited_gnd",
    ),
    Case("delg-demo", "negative count", ("--output_dir={out}", "--num_shards=-1"), 2, "num_shards"),
    # delg-make-synthetic
    Case("delg-make-synthetic", "negative count", ("--output_dir={out}", "--seed=-1"), 2, "seed"),
    Case(
        "delg-make-synthetic",
        "zero count",
        ("--output_dir={out}", "--image_size=0"),
        2,
        r"--image_size=0",
    ),
    # delg-build-tfrecords
    Case(
        "delg-build-tfrecords",
        "missing file",
        ("--image_root={missing}", "--output_directory={out}"),
        2,
        r"missing",
    ),
    Case(
        "delg-build-tfrecords",
        "non-finite float",
        ("--image_root={good_dir}", "--output_directory={out}", "--validation_split_size=nan"),
        2,
        r"--validation_split_size=nan",
    ),
)


def _write_image(path: str, size: int = 64, seed: int = 0) -> None:
    pixels = np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def make_fixtures(root: str, with_export: bool = True) -> dict[str, str]:
    """The bad (and good) files the cases refer to, under `root`."""
    paths = {
        "file": os.path.join(root, "a_file.txt"),
        "missing": os.path.join(root, "missing"),
        "dir": os.path.join(root, "empty_dir"),
        "good_dir": os.path.join(root, "good"),
        "dup_dir": os.path.join(root, "dup"),
        "bad_dir": os.path.join(root, "bad"),
        "tfr_corrupt": os.path.join(root, "tfr", "train-corrupt"),
        "tfr_empty": os.path.join(root, "tfr", "train-empty"),
        "gnd": os.path.join(root, "gnd.json"),
        "export": os.path.join(root, "export"),
    }
    for key in ("dir", "good_dir", "dup_dir", "bad_dir"):
        os.makedirs(paths[key], exist_ok=True)
    os.makedirs(os.path.dirname(paths["tfr_corrupt"]), exist_ok=True)
    with open(paths["file"], "w") as f:
        f.write("not a folder\n")
    for i in range(2):
        _write_image(os.path.join(paths["good_dir"], f"img{i}.png"), seed=i)
    os.makedirs(os.path.join(paths["good_dir"], "class0"), exist_ok=True)
    _write_image(os.path.join(paths["good_dir"], "class0", "c.png"), seed=5)
    _write_image(os.path.join(paths["dup_dir"], "a.jpg"))
    _write_image(os.path.join(paths["dup_dir"], "a.png"))
    _write_image(os.path.join(paths["bad_dir"], "ok.png"))
    outside = os.path.join(root, "outside.png")
    _write_image(outside, seed=3)
    os.symlink(outside, os.path.join(paths["bad_dir"], "outside_link.png"))
    paths["fifo"] = os.path.join(paths["bad_dir"], "fifo.jpg")
    os.mkfifo(paths["fifo"])
    paths["image"] = os.path.join(paths["good_dir"], "img0.png")
    with open(paths["tfr_corrupt"], "wb") as f:
        f.write(np.random.default_rng(0).bytes(4096))
    open(paths["tfr_empty"], "wb").close()
    with open(paths["gnd"], "w") as f:
        f.write('{"qimlist": ["img0"], "imlist": ["img1"], "gnd": [{"bbx": [0, 0, 8, 8], '
                '"easy": [0], "hard": [], "junk": []}]}')  # fmt: skip
    if with_export:
        from tests.helpers.fake_export import export_brightness_model

        export_brightness_model(paths["export"], max_feature_num=100)
    return paths


def run_case(index: int, case: Case, paths: dict[str, str], env: dict | None = None):
    values = dict(paths, out=os.path.join(os.path.dirname(paths["file"]), f"out{index}"))
    args = [a.format(**values) for a in case.args]
    command = [sys.executable, "-m", MODULES[case.tool], *args]
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            env=env,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return None, "TIMEOUT (hang)", ""
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    # The tool's message; progress log lines (absl INFO) may come before it.
    ours = [line for line in lines if line.startswith(f"{case.tool}: ")]
    first = ours[0] if ours else (lines[0] if lines else "")
    return done.returncode, first, done.stderr


def run_all(paths: dict[str, str], env: dict | None = None, workers: int | None = None) -> list:
    """Every case, `RED_TEAM_WORKERS` (default 2) at a time; each finished row is appended to
    the file `RED_TEAM_LOG`, if set, as it completes."""
    workers = workers or int(os.environ.get("RED_TEAM_WORKERS", "2"))
    log = os.environ.get("RED_TEAM_LOG")

    def one(i: int, case: Case):
        result = run_case(i, case, paths, env)
        if log:
            with open(log, "a") as f:
                f.write(_table([case], [result]).splitlines()[-1] + "\n")
        return result

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(one, i, c) for i, c in enumerate(CASES)]
        return [f.result() for f in futures]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("red_team"))
    paths = make_fixtures(root)
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    observed = run_all(paths, env)
    if os.environ.get("RED_TEAM_TABLE"):  # the observed table, for the record
        with open(os.environ["RED_TEAM_TABLE"], "w") as f:
            f.write(_table(CASES, observed))
    return observed


@pytest.mark.timeout(float(os.environ.get("RED_TEAM_PYTEST_TIMEOUT", "900")))
@pytest.mark.parametrize("index", range(len(CASES)), ids=[f"{c.tool}:{c.bad}" for c in CASES])
def test_bad_input_gives_one_line_and_documented_exit_code(results, index):
    case = CASES[index]
    code, first, stderr = results[index]
    assert code == case.code, f"{case}: exit {code}, stderr:\n{stderr[-3000:]}"
    if case.code == 2:
        # One line, prefixed with the tool, naming the thing; no traceback.
        assert "Traceback" not in stderr, stderr[-3000:]
        assert first.startswith(f"{case.tool}: "), stderr[-3000:]
        assert re.search(case.first_line, first), f"{first!r} !~ {case.first_line!r}"
        # The message is the last thing printed, on one line; earlier lines can only be log
        # lines ("I1201 ...", "W0000 ..."; TF's C++ warnings about a corrupt record cannot be
        # silenced from Python), never a traceback or TF's start-up lines.
        lines = [x for x in stderr.splitlines() if x.strip()]
        assert lines[-1] == first, stderr[-3000:]
        for line in lines[:-1]:
            assert re.match(r"[IWE]\d{4} |WARNING: All log messages before absl", line), line
            assert "cpu_feature_guard" not in line, line
    if case.code == 3:
        assert "Traceback" not in stderr, stderr[-3000:]
        assert "fifo" in stderr and "outside_link" in stderr, stderr[-3000:]


def _table(cases, observed) -> str:
    header = "| binary | bad input | exit | the tool's error line (else stderr's first line) |"
    lines = [header, "|---|---|---|---|"]
    for case, (code, first, _) in zip(cases, observed, strict=True):
        first = first.replace("|", "\\|")
        if len(first) > 150:
            first = first[:150] + "..."
        lines.append(f"| {case.tool} | {case.bad} | {code} | `{first}` |")
    return "\n".join(lines) + "\n"


def _main() -> None:
    import argparse
    import tempfile

    parser = argparse.ArgumentParser()
    parser.add_argument("--pythonpath", default="")
    options = parser.parse_args()
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    if options.pythonpath:
        env["PYTHONPATH"] = options.pythonpath
    skip = set(filter(None, os.environ.get("RED_TEAM_SKIP", "").split(",")))
    cases = [c for c in CASES if c.tool not in skip]
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as root:
        paths = make_fixtures(root)
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            futures = [pool.submit(run_case, i, c, paths, env) for i, c in enumerate(cases)]
            observed = [f.result() for f in futures]
        print(_table(cases, observed), flush=True)


if __name__ == "__main__":
    _main()
