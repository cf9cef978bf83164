"""Tests for the delg-make-synthetic binary (run as a subprocess, like a user would)."""

import csv
import json
import os
import subprocess
import sys

SMALL_FLAGS = [
    "--num_train_landmarks=3",
    "--images_per_train_landmark=2",
    "--num_noisy_train_images=1",
    "--num_test_landmarks=2",
    "--index_images_per_test_landmark=3",
    "--num_distractor_landmarks=0",
    "--num_distractor_images=1",
    "--image_size=48",
    "--plane_size=64",
    "--num_palettes=2",
]


def _run(*args):
    return subprocess.run(
        [sys.executable, "-m", "delg_tools.make_synthetic", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_binary_writes_dataset_with_overrides(tmp_path):
    out = str(tmp_path / "synthetic")
    result = _run(
        f"--output_dir={out}", "--preset=tiny", "--seed=5", "--num_workers=1", *SMALL_FLAGS
    )
    assert result.returncode == 0, result.stderr
    counts = json.loads(result.stdout.strip().splitlines()[-1])
    assert counts["num_train_images"] == 3 * 2 + 1
    assert counts["num_train_clean_images"] == 6
    assert counts["num_queries"] == 2 and counts["num_index_images"] == 2 * 3 + 1
    with open(os.path.join(out, "train.csv"), newline="") as f:
        assert len(list(csv.reader(f))) == 1 + 7
    with open(os.path.join(out, "synthetic_info.json")) as f:
        info = json.load(f)
    assert info["seed"] == 5 and info["config"]["image_size"] == 48
    assert info["config"]["num_palettes"] == 2
    assert info["config"]["images_per_distractor_landmark"] == 3  # from the preset
    with open(os.path.join(out, "flags.txt")) as f:
        recorded = f.read().splitlines()
    # Only the flags that decide the content (no --output_dir), so copies stay byte-identical.
    assert recorded[:2] == ["--preset=tiny", "--seed=5"] and "--num_train_landmarks=3" in recorded
    assert not any(line.startswith("--output_dir") for line in recorded)


def test_binary_rejects_bad_flags(tmp_path):
    result = _run(f"--output_dir={tmp_path}", "--preset=huge")
    assert result.returncode != 0 and "huge" in result.stderr
    result = _run(f"--output_dir={tmp_path}", "--num_test_landmarks=0")
    assert result.returncode != 0
    assert "--num_test_landmarks=0: must be a finite number > 0" in result.stderr
    result = _run("--preset=tiny")
    assert result.returncode != 0 and "output_dir" in result.stderr
