"""delg-build-tfrecords end to end, run as a subprocess as users run it.

Covers: GLDv2 mode with one input of every bad kind, relabeling.csv, the official split with a
singleton class in validation only, records that parse and decode, the global shuffle, RGB JPEG
conversions, folder mode, exit statuses, a missing CSV column failing before any work, path
traversal, kill -9 and resume (byte-identical to an uninterrupted run, completed shards reused).
"""

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from delg_tf.data import example_schema as schema

_ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")


def _run(*flags, timeout=180):
    command = [sys.executable, "-m", "delg_tools.build_tfrecords", "--noprogress", *flags]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=_ENV)


def _save(path, pixels, fmt="JPEG", mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(pixels)
    if mode:
        image = image.convert(mode)
    image.save(path, format=fmt)
    return path


def _noise(seed, h=48, w=64):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _gld_path(root, image_id, ext=".jpg"):
    return root / image_id[0] / image_id[1] / image_id[2] / (image_id + ext)


@pytest.fixture
def gldv2(tmp_path):
    """A tiny GLDv2 tree: 4 clean classes (one singleton), test images, one input per bad kind."""
    base = tmp_path / "gldv2"
    train, test = base / "train", base / "test"
    classes = {
        500: [f"a{k:03d}" for k in range(6)],
        42: ["b000", "b001", "b002"],
        7: ["c000"],  # singleton: validation only
        1000: ["d000", "d001"],
    }
    for n, image_id in enumerate(i for ids in classes.values() for i in ids):
        _save(_gld_path(train, image_id), _noise(n))
    # Conversions: PNG content, grayscale JPEG, CMYK JPEG, RGBA PNG, 16-bit PNG.
    _save(_gld_path(train, "a001"), _noise(1), fmt="PNG")
    _save(_gld_path(train, "a002"), _noise(2), mode="L")
    _save(_gld_path(train, "a003"), _noise(3), mode="CMYK")
    _save(_gld_path(train, "b001", ".png"), _noise(4), fmt="PNG", mode="RGBA")
    _gld_path(train, "b001").unlink()
    deep = (np.arange(48 * 64, dtype=np.uint16).reshape(48, 64) * 20).astype(np.uint16)
    _gld_path(train, "d001").unlink()
    Image.fromarray(deep).save(_gld_path(train, "d001", ".png"))
    # Bad inputs.
    _gld_path(train, "e000").parent.mkdir(parents=True)
    _gld_path(train, "e000").write_bytes(b"")  # zero bytes
    good = _save(_gld_path(train, "e001"), _noise(9, 64, 64)).read_bytes()
    _gld_path(train, "e001").write_bytes(good[: len(good) // 2])  # truncated
    _gld_path(train, "e002").write_text("<html>not an image</html>")  # not an image
    _save(_gld_path(train, "e003"), _noise(10, 12, 12))  # too small
    secret = _save(base / "secret.jpg", _noise(11))  # outside the root: must never be read
    _gld_path(train, "e004").symlink_to(secret)  # symlink escaping the root
    rows = [
        "landmark_id,images",
        "500," + " ".join(classes[500] + ["e000", "e001", "e002", "e003", "e004"]),
        "42,b000 b001 b002 ../secret missing1",
        "7,c000",
        "1000,d000 d001 ..",
        "notanumber,f000",
        "42,a000",  # duplicate id (already in 500)
        "3,x y,extra",  # malformed row
    ]
    (base / "train_clean.csv").write_text("\n".join(rows) + "\n")
    train_rows = [f"{i},http://x/{i},{label}" for label, ids in classes.items() for i in ids]
    (base / "train.csv").write_text("id,url,landmark_id\n" + "\n".join(train_rows) + "\n")
    for k, image_id in enumerate(["t000", "t001"]):
        _save(_gld_path(test, image_id), _noise(20 + k))
    (base / "test.csv").write_text("id\nt000\nt001\nt404\n")
    return base


def _gldv2_flags(base, out, *extra):
    return (
        f"--train_clean_csv_path={base / 'train_clean.csv'}",
        f"--train_directory={base / 'train'}/*/*/*/",
        f"--test_csv_path={base / 'test.csv'}",
        f"--test_directory={base / 'test'}",
        f"--output_directory={out}",
        *extra,
    )


def _records(out, split):
    names = sorted(n for n in os.listdir(out) if n.startswith(split + "-") and "." not in n)
    result = []
    for name in names:
        for serialized in tf.data.TFRecordDataset(str(out / name)):
            features = schema.parse_example(serialized)
            image = tf.io.decode_jpeg(features[schema.ENCODED])
            assert image.shape[2] == 3
            assert image.shape[0] == int(features[schema.HEIGHT])
            assert image.shape[1] == int(features[schema.WIDTH])
            result.append(
                (
                    features[schema.ID].numpy().decode(),
                    int(features[schema.LABEL]),
                    name,
                    features[schema.ENCODED].numpy(),
                )
            )
    return result


def _bad_rows(out):
    rows = list(csv.reader(io.StringIO((out / "bad_inputs.csv").read_text())))
    assert rows[0] == ["id", "path", "reason"]
    return {(r[0], r[2].split(" (")[0]) for r in rows[1:]}


def test_gldv2_end_to_end_with_every_bad_kind(tmp_path, gldv2):
    out = tmp_path / "out"
    result = _run(*_gldv2_flags(gldv2, out, "--num_shards=2", "--generate_train_validation_splits"))
    assert result.returncode == 3, result.stderr
    # Clean labels relabelled in sorted order of landmark_id (the row with a bad label excluded).
    assert (out / "relabeling.csv").read_text() == "new_label,old_label\n0,7\n1,42\n2,500\n3,1000\n"
    train, validation, test = (_records(out, s) for s in ("train", "validation", "test"))
    labels_of = {i: label for i, label, _, _ in train + validation}
    assert labels_of == {
        **{f"a{k:03d}": 2 for k in range(6)},
        "b000": 1,
        "b001": 1,
        "b002": 1,
        "c000": 0,
        "d000": 3,
        "d001": 3,
    }
    # Per-class split: max(1, int(0.2 n)) to validation; the singleton class only there.
    validation_count = {}
    for _, label, _, _ in validation:
        validation_count[label] = validation_count.get(label, 0) + 1
    assert validation_count == {0: 1, 1: 1, 2: 1, 3: 1}
    assert 0 not in {label for _, label, _, _ in train}
    assert sorted(i for i, _, _, _ in test) == ["t000", "t001"]
    assert all(label == schema.NO_LABEL for _, label, _, _ in test)
    # Original RGB JPEG bytes kept as they are; the secret outside the root never read.
    assert any(
        data == _gld_path(gldv2 / "train", i).read_bytes() for i, _, _, data in train + validation
    )
    secret = (gldv2 / "secret.jpg").read_bytes()
    assert all(data != secret for _, _, _, data in train + validation + test)
    assert _bad_rows(out) == {
        ("e000", "empty file"),
        ("e001", "truncated or corrupt image"),
        ("e002", "not an image"),
        ("e003", "image too small"),
        ("e004", "path resolves outside the image directory"),
        ("../secret", "id contains a path separator"),
        ("..", "id contains '..'"),
        ("missing1", "missing file"),
        ("f000", "non-integer label"),
        ("a000", "duplicate id"),
        ("", "malformed CSV row"),
        ("t404", "missing file"),
    }
    summary = result.stdout
    assert "1 only in validation" in summary
    assert "converted to RGB JPEG: 5 (" in summary
    for kind in ("JPEG/CMYK: 1", "JPEG/L: 1", "PNG/RGB: 1", "PNG/RGBA: 1", "PNG/I;16"):
        assert kind in summary
    assert "bad inputs skipped: 12" in summary
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["summary"]["classes_only_in_validation"] == 1
    assert manifest["identity"]["seed"] == 0


def test_train_csv_mode_keeps_original_labels_and_shuffles(tmp_path, gldv2):
    out = tmp_path / "out"
    result = _run(
        f"--train_csv_path={gldv2 / 'train.csv'}",
        f"--train_directory={gldv2 / 'train'}",
        f"--output_directory={out}",
        "--num_shards=1",
    )
    assert result.returncode == 0, result.stderr
    assert not (out / "relabeling.csv").exists()  # As the official tool: labels not remapped.
    assert sorted(os.listdir(out)) == ["bad_inputs.csv", "manifest.json", "train-00000-of-00001"]
    records = _records(out, "train")
    labels = [label for _, label, _, _ in records]
    assert sorted(labels) == sorted([500] * 6 + [42] * 3 + [7] + [1000] * 2)
    assert labels != sorted(labels)  # The official tool writes this case grouped by label.
    assert {i for i, _, _, _ in records} == {
        *(f"a{k:03d}" for k in range(6)),
        "b000",
        "b001",
        "b002",
        "c000",
        "d000",
        "d001",
    }


def _folder_dataset(root, classes=3, per_class=5, size=48, fmt="JPEG"):
    k = 0
    for c in range(classes):
        for i in range(per_class):
            _save(root / f"class_{c}" / f"img {i}.{fmt.lower()}", _noise(k, size, size), fmt=fmt)
            k += 1


def test_folder_mode_global_shuffle_and_resume_refusal(tmp_path):
    root = tmp_path / "photos"
    _folder_dataset(root, classes=3, per_class=8)
    out = tmp_path / "out"
    result = _run(f"--image_root={root}", f"--output_directory={out}", "--num_shards=3")
    assert result.returncode == 0, result.stderr
    assert (out / "relabeling.csv").read_text() == (
        "new_label,old_label\n0,class_0\n1,class_1\n2,class_2\n"
    )
    train = _records(out, "train")
    assert len(train) == 24
    assert {i for i, _, _, _ in train} == {f"class_{c}/img_{i}" for c in range(3) for i in range(8)}
    labels = [label for _, label, _, _ in train]
    assert all(int(i.split("/")[0][-1]) == label for i, label, _, _ in train)
    # Globally shuffled: labels not sorted, and every shard holds more than one class.
    assert labels != sorted(labels)
    for shard in {name for _, _, name, _ in train}:
        assert len({label for _, label, name, _ in train if name == shard}) > 1
    assert _bad_rows(out) == set()
    assert "bad inputs skipped: 0" in result.stdout

    # Same output directory, other flags: refused (before any work), then --overwrite.
    other = (f"--image_root={root}", f"--output_directory={out}", "--num_shards=2", "--seed=4")
    refused = _run(*other)
    assert refused.returncode == 2
    assert "num_shards: 3 -> 2" in refused.stderr and "seed: 0 -> 4" in refused.stderr
    assert "--overwrite" in refused.stderr
    assert json.loads((out / "manifest.json").read_text())["status"] == "complete"
    assert _run(*other, "--overwrite").returncode == 0
    assert json.loads((out / "manifest.json").read_text())["identity"]["seed"] == 4
    assert not (out / "train-00002-of-00003").exists()


@pytest.mark.parametrize(
    "flags, message",
    [
        ((), "--output_directory is required"),
        (("--output_directory=OUT",), "give either --image_root"),
        (("--output_directory=OUT", "--image_root=x", "--train_directory=y"), "cannot be combined"),
        (("--output_directory=OUT", "--train_directory=y"), "go together"),
        (("--output_directory=OUT", "--image_root=x", "--num_shards=0"), "--num_shards"),
        (
            (
                "--output_directory=OUT",
                "--image_root=x",
                "--generate_train_validation_splits",
                "--validation_split_size=1.5",
            ),
            "--validation_split_size",
        ),
        (("--output_directory=OUT", "--no_such_flag=1"), "no_such_flag"),
        (("--output_directory=OUT", "--image_root=DOES_NOT_EXIST"), "is not a directory"),
    ],
)
def test_usage_errors_exit_2(tmp_path, flags, message):
    flags = [f.replace("OUT", str(tmp_path / "out")) for f in flags]
    result = _run(*flags, timeout=60)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert message in result.stderr


def test_missing_column_fails_before_any_work(tmp_path, gldv2):
    (gldv2 / "test.csv").write_text("image_id\nt000\n")
    out = tmp_path / "out"
    result = _run(*_gldv2_flags(gldv2, out), timeout=60)
    assert result.returncode == 2
    assert f"{gldv2 / 'test.csv'}: missing required column 'id'" in result.stderr
    assert not out.exists()


def test_worker_side_imports_do_not_load_tensorflow():
    # Spawned workers import the main module and the worker module; neither may import TF.
    code = (
        "import sys, delg_tools.build_tfrecords, delg_tf.conversion.worker;"
        "print('tensorflow' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_ENV)
    assert result.stdout.strip() == "False", result.stderr


def _listed_shards(out):
    try:
        manifest = json.loads((out / "manifest.json").read_text())
    except (OSError, ValueError):
        return {}
    return {name for split in manifest["splits"].values() for name in split["shards"]}


def _children(pid):
    children = set()
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/children") as f:
            children.update(int(c) for c in f.read().split())
    return children


def _run_and_kill(flags, out, more_than):
    """Starts the tool, SIGKILLs it once the manifest lists more than `more_than` shards."""
    command = [sys.executable, "-m", "delg_tools.build_tfrecords", "--noprogress", *flags]
    with open(out.parent / "killed.log", "ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=log, env=_ENV)
        deadline = time.monotonic() + 120
        while len(_listed_shards(out)) <= more_than:
            assert process.poll() is None, "the tool ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.002)
        children = _children(process.pid)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    # The workers notice their parent died and exit on their own.
    deadline = time.monotonic() + 15
    while any(os.path.exists(f"/proc/{c}") and _is_alive(c) for c in children):
        assert time.monotonic() < deadline, "orphaned workers still running"
        time.sleep(0.1)


def _is_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def _shards(out):
    return {
        n: (out / n).read_bytes()
        for n in os.listdir(out)
        if n.split("-")[0] in ("train", "validation") and "." not in n
    }


def test_kill_9_then_resume_gives_identical_shards(tmp_path):
    root = tmp_path / "photos"
    _folder_dataset(root, classes=4, per_class=30, size=128, fmt="PNG")  # PNG: re-encoded
    common = (f"--image_root={root}", "--num_shards=30", "--generate_train_validation_splits")
    reference = tmp_path / "reference"
    assert _run(*common, f"--output_directory={reference}", "--num_workers=2").returncode == 0

    out = tmp_path / "out"
    flags = (*common, f"--output_directory={out}")
    _run_and_kill((*flags, "--num_workers=1"), out, more_than=0)
    listed = _listed_shards(out)
    assert 0 < len(listed) < 60
    mtimes = {n: (out / n).stat().st_mtime_ns for n in listed}
    _run_and_kill((*flags, "--num_workers=2"), out, more_than=len(listed))
    listed_second = _listed_shards(out)
    assert len(listed) < len(listed_second) < 60
    assert json.loads((out / "manifest.json").read_text())["status"] == "in_progress"

    resumed = _run(*flags, "--num_workers=2")
    assert resumed.returncode == 0, resumed.stderr
    assert f"{60 - len(listed_second)} written, {len(listed_second)} reused" in resumed.stdout
    assert "Reusing verified shard" in resumed.stderr
    assert {n: (out / n).stat().st_mtime_ns for n in listed} == mtimes  # never rewritten
    assert _shards(out) == _shards(reference)
    assert not [n for n in os.listdir(out) if n.endswith(".tmp")]
