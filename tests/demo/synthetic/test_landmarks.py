"""Tests for the synthetic dataset writer: GLDv2 layout, revisitop ground truth, determinism."""

import csv
import json
import os
import pickle
import re

import numpy as np
import pytest
from PIL import Image

from delg_tf.demo.synthetic import landmarks as synthetic_landmarks

# A smaller-than-tiny config keeps these tests at a second or two on one core.
SMALL = dict(
    num_train_landmarks=4,
    images_per_train_landmark=3,
    num_noisy_train_images=2,
    num_test_landmarks=2,
    index_images_per_test_landmark=5,
    num_distractor_landmarks=1,
    images_per_distractor_landmark=2,
    num_distractor_images=2,
    image_size=64,
    plane_size=96,
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("tiny"))
    info = synthetic_landmarks.generate_dataset(out, "tiny", seed=0, num_workers=1)
    return out, info


def _read_csv(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def _all_files(root):
    files = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                files[os.path.relpath(path, root)] = f.read()
    return files


def test_tiny_writes_gldv2_layout(tiny):
    out, info = tiny
    rows = _read_csv(os.path.join(out, "train.csv"))
    assert rows[0] == ["id", "url", "landmark_id"]
    ids = [r[0] for r in rows[1:]]
    assert len(ids) == len(set(ids)) == info["counts"]["num_train_images"] == 8 * 6 + 3
    for image_id, url, landmark_id in rows[1:]:
        assert re.fullmatch(r"[0-9a-f]{16}", image_id)
        assert url == "" or url.startswith("synthetic://")
        assert int(landmark_id) >= 0
        path = os.path.join(out, "train", image_id[0], image_id[1], image_id[2], image_id + ".jpg")
        assert os.path.isfile(path)
    clean = _read_csv(os.path.join(out, "train_clean.csv"))
    assert clean[0] == ["landmark_id", "images"]
    label_of = {r[0]: r[2] for r in rows[1:]}
    clean_ids = []
    for landmark_id, images in clean[1:]:
        for image_id in images.split(" "):
            assert label_of[image_id] == landmark_id  # clean is a subset with the same labels
            clean_ids.append(image_id)
    assert len(clean) - 1 == 8 and len(clean_ids) == 8 * 6
    assert len(set(ids) - set(clean_ids)) == 3  # noisy images only in train.csv
    # Nothing else in train/ (no leftover temporary files).
    jpgs = [f for f in _all_files(os.path.join(out, "train"))]
    assert len(jpgs) == len(ids)


def test_tiny_images_decode(tiny):
    out, _ = tiny
    paths = [os.path.join(dp, n) for dp, _, ns in os.walk(out) for n in ns if n.endswith(".jpg")]
    assert len(paths) == 51 + 4 + 30
    for path in paths:
        with Image.open(path) as image:
            assert image.format == "JPEG" and image.mode == "RGB"
            assert max(image.size) == synthetic_landmarks.PRESETS["tiny"]["image_size"]
            image.load()


def test_tiny_ground_truth_is_valid(tiny):
    out, info = tiny
    # The file was just written by this test: plain pickle is fine here.
    with open(os.path.join(out, "test", "gnd_synthetic.pkl"), "rb") as f:
        gt = pickle.load(f)
    with open(os.path.join(out, "test", "gnd_synthetic.json")) as f:
        gt_json = json.load(f)
    assert {k: gt_json[k] for k in ("imlist", "qimlist", "gnd")} == gt
    imlist, qimlist = gt["imlist"], gt["qimlist"]
    assert len(imlist) == 30 and len(qimlist) == 4 and len(gt["gnd"]) == 4
    assert not set(imlist) & set(qimlist)
    assert info["counts"]["num_distractor_images"] == 2 * 3 + 4
    for name in imlist + qimlist:
        assert os.path.isfile(os.path.join(out, "test", "jpg", name + ".jpg"))
    positives_seen = set()
    for name, entry in zip(qimlist, gt["gnd"], strict=True):
        assert set(entry) == {"easy", "hard", "junk", "bbx"}
        lists = [entry[k] for k in ("easy", "hard", "junk")]
        for indices in lists:
            assert all(isinstance(i, int) and 0 <= i < len(imlist) for i in indices)
        flat = [i for indices in lists for i in indices]
        assert len(flat) == len(set(flat))  # easy, hard and junk are disjoint
        assert entry["easy"] or entry["hard"]
        assert not positives_seen & set(flat)  # each image belongs to one landmark
        positives_seen |= set(flat)
        with Image.open(os.path.join(out, "test", "jpg", name + ".jpg")) as q:
            width, height = q.size
        x1, y1, x2, y2 = entry["bbx"]
        assert all(isinstance(v, float) for v in entry["bbx"])
        assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
    # 10 distractor images belong to no query.
    assert len(imlist) - len(positives_seen) == 10


def test_test_landmarks_are_held_out(tiny):
    out, info = tiny
    ids = info["landmark_ids"]
    assert len(ids["train"]) == 8 and len(ids["test"]) == 4 and len(ids["distractor"]) == 2
    assert not set(ids["train"]) & (set(ids["test"]) | set(ids["distractor"]))
    assert not set(ids["test"]) & set(ids["distractor"])
    train_labels = {int(r[2]) for r in _read_csv(os.path.join(out, "train.csv"))[1:]}
    assert train_labels == set(ids["train"])
    # Held-out planes differ from every training plane.
    planes = [
        np.asarray(synthetic_landmarks.landmark_plane(0, i, 160, 4).resize((32, 32)), float)
        for i in range(8 + 4 + 2)
    ]
    for i in range(8, 14):
        for j in range(8):
            assert np.abs(planes[i] - planes[j]).mean() > 10


def test_info_file(tiny):
    out, info = tiny
    with open(os.path.join(out, "synthetic_info.json")) as f:
        assert json.load(f) == info
    assert info["complete"] and info["preset"] == "tiny" and info["seed"] == 0
    assert info["config"] == synthetic_landmarks.PRESETS["tiny"]
    c = info["counts"]
    assert c["num_easy"] + c["num_hard"] + c["num_junk"] == 4 * 5
    assert c["num_easy"] > 0 and c["num_hard"] > 0 and c["num_junk"] > 0


def test_same_seed_is_byte_identical_across_worker_counts(tmp_path):
    a, b, c = str(tmp_path / "a"), str(tmp_path / "b"), str(tmp_path / "c")
    synthetic_landmarks.generate_dataset(a, "tiny", seed=3, num_workers=1, **SMALL)
    synthetic_landmarks.generate_dataset(b, "tiny", seed=3, num_workers=2, **SMALL)
    synthetic_landmarks.generate_dataset(c, "tiny", seed=4, num_workers=1, **SMALL)
    files_a, files_b, files_c = _all_files(a), _all_files(b), _all_files(c)
    assert files_a == files_b
    assert len(files_a) == 4 * 3 + 2 + 2 * 1 + 2 * 5 + 1 * 2 + 2 + 5  # images + 5 metadata files
    # Another seed: different ids, names and pixels.
    assert not set(files_a) & set(files_c) - {
        "train.csv",
        "train_clean.csv",
        "synthetic_info.json",
        os.path.join("test", "gnd_synthetic.pkl"),
        os.path.join("test", "gnd_synthetic.json"),
    }
    assert files_a["train.csv"] != files_c["train.csv"]


def test_rerun_skips_complete_images_and_restores_missing(tmp_path):
    out = str(tmp_path)
    synthetic_landmarks.generate_dataset(out, "tiny", seed=1, num_workers=1, **SMALL)
    before = _all_files(out)
    jpgs = sorted(k for k in before if k.endswith(".jpg"))
    missing, kept = os.path.join(out, jpgs[0]), os.path.join(out, jpgs[1])
    os.remove(missing)
    # A marker proves the kept image is not rewritten (its content would be restored).
    with open(kept, "ab") as f:
        f.write(b"MARK")
    synthetic_landmarks.generate_dataset(out, "tiny", seed=1, num_workers=1, **SMALL)
    after = _all_files(out)
    assert after[jpgs[0]] == before[jpgs[0]]
    assert after[jpgs[1]] == before[jpgs[1]] + b"MARK"
    assert {k: v for k, v in after.items() if k != jpgs[1]} == {
        k: v for k, v in before.items() if k != jpgs[1]
    }


def test_rerun_with_other_settings_is_refused(tmp_path):
    out = str(tmp_path)
    synthetic_landmarks.generate_dataset(out, "tiny", seed=1, num_workers=1, **SMALL)
    with pytest.raises(ValueError, match="not .*'seed': 2"):
        synthetic_landmarks.generate_dataset(out, "tiny", seed=2, num_workers=1, **SMALL)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(preset="huge"), "unknown synthetic preset 'huge'"),
        (dict(num_train_landmark=3), "unknown synthetic dataset option 'num_train_landmark'"),
        (dict(num_test_landmarks=0), "num_test_landmarks must be >= 1, got 0"),
        (dict(image_size=64.0), "image_size must be an int, got 64.0"),
        (dict(seed=-1), "seed must be a non-negative int, got -1"),
    ],
)
def test_bad_options_are_named(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        synthetic_landmarks.generate_dataset(str(tmp_path), **kwargs)


def test_build_ground_truth_on_hand_made_records():
    records = [
        {"role": "query", "name": "q_b", "landmark": 7, "bbx": (1, 2, 3, 4)},
        {"role": "query", "name": "q_a", "landmark": 5, "bbx": (0, 0, 9, 9)},
        {"role": "index", "name": "i_3", "landmark": 5, "label": "junk"},
        {"role": "index", "name": "i_0", "landmark": 7, "label": "hard"},
        {"role": "index", "name": "i_1", "landmark": 5, "label": "easy"},
        {"role": "index", "name": "i_2", "landmark": None, "label": None},
        {"role": "index", "name": "i_4", "landmark": 9, "label": None},
    ]
    gt = synthetic_landmarks.build_ground_truth(records)
    assert gt["imlist"] == ["i_0", "i_1", "i_2", "i_3", "i_4"]
    assert gt["qimlist"] == ["q_a", "q_b"]
    assert gt["gnd"][0] == {"easy": [1], "hard": [], "junk": [3], "bbx": [0.0, 0.0, 9.0, 9.0]}
    assert gt["gnd"][1] == {"easy": [], "hard": [0], "junk": [], "bbx": [1.0, 2.0, 3.0, 4.0]}
    with pytest.raises(RuntimeError, match="q_b has no easy or hard positive"):
        synthetic_landmarks.build_ground_truth([records[0], records[5]])
