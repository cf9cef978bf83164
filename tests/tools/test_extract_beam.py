"""delg-extract --runner: Apache Beam on the local Python runner with 2 worker processes.

"Equal" below is bit-identical: every Beam worker runs the same extraction function on the same
image with the same SavedModel (one image per call, no batching), so nothing differs but the
process, and the arrays are compared with `assert_array_equal`.
"""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("apache_beam", reason="needs the [beam] extra (make test installs it)")
from delg_tf.data.revisited_ground_truth import save_ground_truth_json  # noqa: E402
from delg_tf.extraction.feature_store import FeatureStore  # noqa: E402
from tests.helpers.fake_export import export_brightness_model  # noqa: E402

LOCAL_TWO_WORKERS = [
    # FnApiRunner is Beam's Python runner; 2.77's DirectRunner may download a Prism binary.
    "--runner=FnApiRunner",
    "--direct_num_workers=2",
    "--direct_running_mode=multi_processing",
]
NUM_IMAGES = 12


def _tool(module, *flags, **kw):
    cmd = [sys.executable, "-m", f"delg_tools.{module}", *flags]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900, **kw)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("beam")
    model = str(root / "export")
    export_brightness_model(model, max_image_size=96)
    images = root / "jpg"
    images.mkdir()
    rng = np.random.default_rng(5)
    names = [f"im{i:02d}" for i in range(NUM_IMAGES)]
    for i, name in enumerate(names):
        pixels = np.zeros([64 + 4 * (i % 3), 96, 3], np.uint8)
        top, left = rng.integers(0, 24, size=2)
        pixels[top : top + 32, left : left + 8 * (1 + i % 4)] = 40 + 15 * i
        Image.fromarray(pixels).save(images / f"{name}.jpg", quality=95)
    (images / "im05.jpg").write_bytes(b"\xff\xd8\xff broken")  # corrupt, in part-00001
    gnd = [
        {"easy": [1, 2], "hard": [4], "junk": [], "bbx": [0.0, 0.0, 90.0, 60.0]},
        {"easy": [7], "hard": [9, 10], "junk": [3], "bbx": [8.0, 4.0, 80.0, 50.0]},
    ]
    save_ground_truth_json(
        str(root / "gnd.json"), {"imlist": names, "qimlist": ["im00", "im06"], "gnd": gnd}
    )
    # delg-evaluate needs every index image in the store: its ground truth leaves the corrupt
    # image out (index positions shift by one after im05).
    shifted = [
        {k: [i - (i > 5) for i in v] if k != "bbx" else v for k, v in g.items()} for g in gnd
    ]
    save_ground_truth_json(
        str(root / "gnd_eval.json"),
        {"imlist": [n for n in names if n != "im05"], "qimlist": ["im00", "im06"], "gnd": shifted},
    )
    common = [f"--model_path={model}", f"--dataset_file_path={root / 'gnd.json'}",
              f"--images_dir={images}"]  # fmt: skip
    for image_set in ("query", "index"):
        done = _tool("extract", *common, f"--image_set={image_set}",
                     f"--output_features_dir={root / image_set}")  # fmt: skip
        assert done.returncode == (3 if image_set == "index" else 0), done.stderr[-3000:]
    index_args = [*common, "--image_set=index", "--images_per_part=3", "--shard_size=1"]
    return root, index_args


def _assert_same_store(a: FeatureStore, b: FeatureStore):
    assert a.ids == b.ids and len(a.ids) == NUM_IMAGES - 1
    np.testing.assert_array_equal(np.asarray(a.global_descriptors()), b.global_descriptors())
    for image_id in a.ids:
        local_a, local_b = a.local_features(image_id), b.local_features(image_id)
        for key in local_a:
            np.testing.assert_array_equal(local_a[key], local_b[key], err_msg=image_id)


def test_beam_store_equals_the_one_process_store_and_evaluates_the_same(dataset):
    root, index_args = dataset
    beam_dir = root / "index_beam"
    result = _tool("extract", *index_args, f"--output_features_dir={beam_dir}",
                   *LOCAL_TWO_WORKERS)  # fmt: skip
    assert result.returncode == 3, result.stderr[-3000:]  # finished, one image failed
    one, parts = FeatureStore(str(root / "index")), FeatureStore(str(beam_dir))
    assert parts.complete and parts.missing_parts == []
    assert [p["name"] for p in parts.manifest["parts"]] == [f"part-0000{k}" for k in range(4)]
    _assert_same_store(one, parts)
    # The corrupt image is reported once, in the manifest's failures; every good image is kept.
    manifest = json.loads((beam_dir / "manifest.json").read_text())
    assert [f[0] for f in manifest["failures"]] == ["im05"] and manifest["num_images"] == 11
    assert parts.failures == one.failures and len(parts.failures) == 1

    for name, store in (("one", root / "index"), ("beam", beam_dir)):
        done = _tool("evaluate", f"--dataset_file_path={root / 'gnd_eval.json'}",
                     f"--query_features_dir={root / 'query'}", f"--index_features_dir={store}",
                     f"--output_dir={root / ('eval_' + name)}")  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
    metrics = [
        json.loads((root / f"eval_{name}" / "metrics.json").read_text())["metrics"]
        for name in ("one", "beam")
    ]
    assert metrics[0] == metrics[1] and "medium" in metrics[0]
    assert metrics[0]["medium"]["mAP"] > 0


def test_killed_run_then_rerun_redoes_no_finished_part(dataset):
    root, index_args = dataset
    out = root / "index_killed"
    cmd = [sys.executable, "-m", "delg_tools.extract", *index_args,
           f"--output_features_dir={out}", *LOCAL_TWO_WORKERS]  # fmt: skip
    # Its own session, so the kill takes the launcher and both Beam worker processes at once.
    process = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and process.poll() is None:
        if any(_part_complete(out / f"part-0000{k}") for k in range(4)):
            break
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    killed = FeatureStore(str(out))
    finished = [
        p["name"] for p in killed.manifest["parts"] if p["name"] not in killed.missing_parts
    ]
    assert finished and killed.missing_parts, "the kill must land mid-run"
    assert not killed.complete and len(killed.ids) < NUM_IMAGES - 1
    stamps = {name: _stamps(out / name) for name in finished}
    partial = _tool("evaluate", f"--dataset_file_path={root / 'gnd_eval.json'}",
                    f"--query_features_dir={root / 'query'}", f"--index_features_dir={out}",
                    f"--output_dir={root / 'eval_partial'}")  # fmt: skip
    missing = len(killed.missing_parts)
    assert f"{out}: {missing} of 4 parts are not finished" in partial.stderr, partial.stderr[-3000:]

    result = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert result.returncode == 3, result.stderr[-3000:]
    assert {name: _stamps(out / name) for name in finished} == stamps  # not redone
    resumed = FeatureStore(str(out))
    assert resumed.complete
    _assert_same_store(FeatureStore(str(root / "index")), resumed)
    assert [f[0] for f in resumed.manifest["failures"]] == ["im05"]


def _part_complete(part_dir):
    try:
        return json.loads((part_dir / "manifest.json").read_text())["complete"]
    except (OSError, ValueError):
        return False


def _stamps(part_dir):
    return {n: os.stat(part_dir / n).st_mtime_ns for n in sorted(os.listdir(part_dir))}


def test_without_beam_runner_fails_in_one_line_saying_how_to_install(tmp_path):
    code = (
        "import sys; sys.modules['apache_beam'] = None\n"  # as if the extra were not installed
        "from delg_tools import extract; extract.run()"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, f"--model_path={tmp_path}", f"--images_dir={tmp_path}",
         f"--output_features_dir={tmp_path / 'out'}", "--runner=FnApiRunner"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("delg-extract:")]
    assert "--runner=FnApiRunner needs Apache Beam" in line and '".[beam]"' in line
    assert not (tmp_path / "out").exists()
