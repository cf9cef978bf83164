"""Writes a synthetic landmark dataset laid out exactly like GLDv2 plus a revisitop test set.

Layout under `output_dir`:

    train.csv              id,url,landmark_id  (ids: 16 lowercase hex chars, rows sorted by id)
    train_clean.csv        landmark_id,images  (space-separated ids; a subset of train.csv)
    train/a/b/c/<id>.jpg   a, b, c = the id's first three characters
    test/jpg/<name>.jpg    queries and index images of held-out landmarks
    test/gnd_synthetic.pkl revisitop ground truth: imlist, qimlist, gnd[{easy, hard, junk, bbx}]
    test/gnd_synthetic.json
    synthetic_info.json    preset, seed, resolved config and counts

Train landmarks, test (queried) landmarks and distractor landmarks are disjoint: they are
different landmark indices, each composed from its own seed. train.csv also lists
`num_noisy_train_images` images that are not in train_clean.csv (scenes without the landmark,
as GLDv2's uncleaned set has), and the index holds views of never-queried landmarks and scenes
without any landmark as distractors.

Every image has its own numpy Generator seeded from (seed, kind, landmark, view), so the output
is byte-identical for a seed whatever the number of workers or the order they run in. Files are
written to a hidden temporary name and renamed, and a rerun skips images already on disk (their
labels come from geometry alone, which is recomputed without rendering).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import multiprocessing
import os
import pickle
from collections.abc import Mapping
from typing import Any

import numpy as np
from PIL import Image

from delg_tf.common.atomic_files import write_bytes_atomically
from delg_tf.common.cores import usable_cores
from delg_tf.demo.synthetic import photos as synthetic_photos
from delg_tf.demo.synthetic import scenes as synthetic_scenes
from delg_tf.demo.synthetic import views as synthetic_views

INFO_FILENAME = "synthetic_info.json"
GND_PICKLE = os.path.join("test", "gnd_synthetic.pkl")
GND_JSON = os.path.join("test", "gnd_synthetic.json")
_INFO_FORMAT = "delg_tf.synthetic_landmarks"

PRESETS: dict[str, dict[str, int]] = {
    # Unit tests: a few seconds on one core.
    "tiny": {
        "num_train_landmarks": 8,
        "images_per_train_landmark": 6,
        "num_noisy_train_images": 3,
        "num_test_landmarks": 4,
        "queries_per_test_landmark": 1,
        "index_images_per_test_landmark": 5,
        "num_distractor_landmarks": 2,
        "images_per_distractor_landmark": 3,
        "num_distractor_images": 4,
        "image_size": 112,
        "plane_size": 160,
        "num_palettes": 4,
    },
    # The CPU demo: ~3,000 images in about a minute on 2 cores.
    "demo": {
        "num_train_landmarks": 150,
        "images_per_train_landmark": 20,
        "num_noisy_train_images": 60,
        "num_test_landmarks": 10,
        "queries_per_test_landmark": 2,
        "index_images_per_test_landmark": 24,
        "num_distractor_landmarks": 12,
        "images_per_distractor_landmark": 10,
        "num_distractor_images": 100,
        "image_size": 288,
        "plane_size": 384,
        "num_palettes": 8,
    },
}

# Smallest allowed value per config key.
_MINIMUM = {
    "num_train_landmarks": 1,
    "images_per_train_landmark": 1,
    "num_noisy_train_images": 0,
    "num_test_landmarks": 1,
    "queries_per_test_landmark": 1,
    "index_images_per_test_landmark": 1,
    "num_distractor_landmarks": 0,
    "images_per_distractor_landmark": 0,
    "num_distractor_images": 0,
    "image_size": 32,
    "plane_size": 32,
    "num_palettes": 1,
}

# View modes by view index: index view 0 of a test landmark is always 'easy' mode, which never
# measures as junk, so every query has a positive. Test index: 40% easy, 40% hard, 20% junk.
_TRAIN_MODES = ("easy", "hard", "easy", "hard", "query")
_INDEX_MODES = ("easy", "hard", "junk", "easy", "hard")
_DISTRACTOR_MODES = ("easy", "hard")

# Seed-sequence tags: one stream per kind of image.
_LANDMARK, _TRAIN, _NOISY, _QUERY, _INDEX, _DISTRACTOR_VIEW, _NO_LANDMARK, _LABELS, _PALETTE = (
    range(9)
)


def resolve_config(preset: str, overrides: Mapping[str, Any] | None = None) -> dict[str, int]:
    """Returns the preset's config with `overrides` applied and checked.

    Raises:
        ValueError: Unknown preset or key, or a value that is not an int >= its minimum.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown synthetic preset {preset!r}; choose one of {sorted(PRESETS)}")
    config = dict(PRESETS[preset])
    for key, value in (overrides or {}).items():
        if key not in _MINIMUM:
            raise ValueError(f"unknown synthetic dataset option {key!r}; valid: {sorted(_MINIMUM)}")
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise ValueError(f"synthetic option {key} must be an int, got {value!r}")
        if value < _MINIMUM[key]:
            raise ValueError(f"synthetic option {key} must be >= {_MINIMUM[key]}, got {value}")
        config[key] = int(value)
    return config


def _rng(seed: int, *tags: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *tags]))


def _hex_id(seed: int, *tags: int) -> str:
    return hashlib.sha256(repr((seed, *tags)).encode()).hexdigest()[:16]


def train_image_path(output_dir: str, image_id: str) -> str:
    """GLDv2 path of a training image: train/a/b/c/<id>.jpg."""
    return os.path.join(
        output_dir, "train", image_id[0], image_id[1], image_id[2], image_id + ".jpg"
    )


def test_image_path(output_dir: str, name: str) -> str:
    """Path of a test (query or index) image: test/jpg/<name>.jpg."""
    return os.path.join(output_dir, "test", "jpg", name + ".jpg")


def _atomic_write(path: str, data: bytes) -> None:
    """Writes via a hidden temporary file and a rename, so `path` is complete or absent."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_bytes_atomically(path, data, sync=False)


def _palette(seed: int, num_palettes: int, *tags: int) -> list[tuple[int, int, int]]:
    """One palette of the dataset's shared pool, picked by a generator seeded from `tags`."""
    k = int(_rng(seed, _PALETTE, *tags).integers(num_palettes))
    return synthetic_scenes.random_palette(_rng(seed, _PALETTE, k), 4)


@dataclasses.dataclass
class _Landmark:
    """A landmark whose plane is composed only when a view of it must actually be drawn."""

    seed: int
    index: int
    plane_long_side: int
    num_palettes: int = 1

    def __post_init__(self) -> None:
        self.size = synthetic_scenes.landmark_plane_size(
            _rng(self.seed, _LANDMARK, self.index, 0), self.plane_long_side
        )
        self._plane: Image.Image | None = None

    @property
    def plane(self) -> Image.Image:
        if self._plane is None:
            self._plane = synthetic_scenes.compose_landmark(
                _rng(self.seed, _LANDMARK, self.index, 1),
                self.size,
                synthetic_photos.load_photos(),
                synthetic_photos.load_textures(),
                # Tags (1, index) never collide with the pool's own (k,) generators.
                _palette(self.seed, self.num_palettes, 1, self.index),
            )
        return self._plane


def _view(
    path: str, landmark: _Landmark | None, mode: str, config: dict[str, int], seed: int, *tags: int
) -> synthetic_views.ViewGeometry | None:
    """Samples (and, unless `path` exists, renders and writes) one view; returns its geometry."""
    image_size = config["image_size"]
    geom_seq, render_seq = np.random.SeedSequence([seed, *tags]).spawn(2)
    plane_size = landmark.size if landmark is not None else (image_size, image_size)
    params = synthetic_views.sample_view_params(
        np.random.default_rng(geom_seq), mode, image_size, plane_size
    )
    geometry = synthetic_views.measure_view(params, plane_size) if landmark is not None else None
    if not os.path.exists(path):
        render_rng = np.random.default_rng(render_seq)
        quality = int(render_rng.integers(75, 96))
        image = synthetic_views.render_view(
            render_rng,
            landmark.plane if landmark is not None else None,
            params,
            synthetic_photos.load_photos(),
            synthetic_photos.load_textures(),
            # Clutter of landmark-free scenes uses the landmarks' palettes too.
            None if landmark is not None else _palette(seed, config["num_palettes"], 2, *tags),
        )
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=quality)
        _atomic_write(path, buffer.getvalue())
    return geometry


def _task_train(output_dir, seed, config, landmark_index, landmark_id) -> list[dict]:
    landmark = _Landmark(seed, landmark_index, config["plane_size"], config["num_palettes"])
    records = []
    for v in range(config["images_per_train_landmark"]):
        image_id = _hex_id(seed, _TRAIN, landmark_index, v)
        mode = _TRAIN_MODES[v % len(_TRAIN_MODES)]
        path = train_image_path(output_dir, image_id)
        _view(path, landmark, mode, config, seed, _TRAIN, landmark_index, v)
        records.append({"id": image_id, "landmark_id": landmark_id, "clean": True})
    return records


def _task_noisy(output_dir, seed, config, k, landmark_id) -> list[dict]:
    image_id = _hex_id(seed, _NOISY, k)
    path = train_image_path(output_dir, image_id)
    _view(path, None, "easy", config, seed, _NOISY, k)
    return [{"id": image_id, "landmark_id": landmark_id, "clean": False}]


def _test_name(prefix: str, seed: int, *tags: int) -> str:
    return f"{prefix}_{_hex_id(seed, *tags)[:12]}"


def _task_test_landmark(output_dir, seed, config, landmark_index) -> list[dict]:
    landmark = _Landmark(seed, landmark_index, config["plane_size"], config["num_palettes"])
    records = []
    for q in range(config["queries_per_test_landmark"]):
        name = _test_name("query", seed, _QUERY, landmark_index, q)
        g = _view(test_image_path(output_dir, name), landmark, "query", config, seed, _QUERY,
                  landmark_index, q)  # fmt: skip
        records.append({"role": "query", "name": name, "landmark": landmark_index, "bbx": g.bbox})
    for v in range(config["index_images_per_test_landmark"]):
        name = _test_name("index", seed, _INDEX, landmark_index, v)
        mode = _INDEX_MODES[v % len(_INDEX_MODES)]
        g = _view(test_image_path(output_dir, name), landmark, mode, config, seed, _INDEX,
                  landmark_index, v)  # fmt: skip
        label = synthetic_views.classify_view(g)
        records.append({"role": "index", "name": name, "landmark": landmark_index, "label": label})
    return records


def _task_distractor_landmark(output_dir, seed, config, landmark_index) -> list[dict]:
    landmark = _Landmark(seed, landmark_index, config["plane_size"], config["num_palettes"])
    records = []
    for v in range(config["images_per_distractor_landmark"]):
        name = _test_name("index", seed, _DISTRACTOR_VIEW, landmark_index, v)
        mode = _DISTRACTOR_MODES[v % len(_DISTRACTOR_MODES)]
        _view(test_image_path(output_dir, name), landmark, mode, config, seed,
              _DISTRACTOR_VIEW, landmark_index, v)  # fmt: skip
        records.append({"role": "index", "name": name, "landmark": landmark_index, "label": None})
    return records


def _task_no_landmark(output_dir, seed, config, k) -> list[dict]:
    name = _test_name("index", seed, _NO_LANDMARK, k)
    _view(test_image_path(output_dir, name), None, "easy", config, seed,
          _NO_LANDMARK, k)  # fmt: skip
    return [{"role": "index", "name": name, "landmark": None, "label": None}]


_TASKS = {
    "train": _task_train,
    "noisy": _task_noisy,
    "test": _task_test_landmark,
    "distractor": _task_distractor_landmark,
    "none": _task_no_landmark,
}


def _run_task(task: tuple) -> list[dict]:
    kind, output_dir, seed, config, *args = task
    return _TASKS[kind](output_dir, seed, config, *args)


def _landmark_ids(seed: int, count: int) -> list[int]:
    """Distinct, non-contiguous landmark ids in [0, 200000) like GLDv2's."""
    return [int(x) for x in _rng(seed, _LABELS).choice(200_000, size=count, replace=False)]


def _csv_bytes(header: list[str], rows: list[list[Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def _write_train_csvs(output_dir: str, records: list[dict]) -> dict[str, int]:
    records = sorted(records, key=lambda r: r["id"])
    ids = [r["id"] for r in records]
    if len(set(ids)) != len(ids):
        raise RuntimeError("synthetic image id collision; use another --seed")
    train_rows = [[r["id"], f"synthetic://train/{r['id']}.jpg", r["landmark_id"]] for r in records]
    _atomic_write(
        os.path.join(output_dir, "train.csv"), _csv_bytes(["id", "url", "landmark_id"], train_rows)
    )
    clean: dict[int, list[str]] = {}
    for r in records:
        if r["clean"]:
            clean.setdefault(r["landmark_id"], []).append(r["id"])
    clean_rows = [[lid, " ".join(clean[lid])] for lid in sorted(clean)]
    _atomic_write(
        os.path.join(output_dir, "train_clean.csv"),
        _csv_bytes(["landmark_id", "images"], clean_rows),
    )
    return {
        "num_train_images": len(records),
        "num_train_clean_images": sum(len(v) for v in clean.values()),
        "num_train_classes": len(clean),
    }


def build_ground_truth(records: list[dict]) -> dict[str, Any]:
    """Builds the revisitop ground truth from test records.

    Args:
        records: Dicts with `role` ('query' or 'index'), `name`, `landmark` (int or None);
            queries also have `bbx`, index images `label` ('easy'/'hard'/'junk', or None for
            distractors).

    Returns:
        `{'imlist', 'qimlist', 'gnd'}` with plain lists; imlist and qimlist sorted by name.

    Raises:
        RuntimeError: If a query has no easy or hard positive.
    """
    index = sorted((r for r in records if r["role"] == "index"), key=lambda r: r["name"])
    queries = sorted((r for r in records if r["role"] == "query"), key=lambda r: r["name"])
    gnd = []
    for q in queries:
        entry: dict[str, Any] = {"easy": [], "hard": [], "junk": []}
        for i, r in enumerate(index):
            if r["landmark"] is not None and r["landmark"] == q["landmark"] and r["label"]:
                entry[r["label"]].append(i)
        if not entry["easy"] and not entry["hard"]:
            raise RuntimeError(f"synthetic query {q['name']} has no easy or hard positive")
        entry["bbx"] = [float(v) for v in q["bbx"]]
        gnd.append(entry)
    return {
        "imlist": [r["name"] for r in index],
        "qimlist": [r["name"] for r in queries],
        "gnd": gnd,
    }


def _write_ground_truth(output_dir: str, gt: dict[str, Any]) -> None:
    _atomic_write(os.path.join(output_dir, GND_PICKLE), pickle.dumps(gt, protocol=4))
    try:
        from delg_tf.data import revisited_ground_truth
    except ImportError:  # the shared reader/writer is optional here
        revisited_ground_truth = None
    if revisited_ground_truth is not None and hasattr(
        revisited_ground_truth, "save_ground_truth_json"
    ):
        revisited_ground_truth.save_ground_truth_json(os.path.join(output_dir, GND_JSON), gt)
    else:
        _atomic_write(os.path.join(output_dir, GND_JSON), json.dumps(gt).encode("utf-8"))


def _check_previous_run(output_dir: str, header: dict[str, Any]) -> None:
    """Refuses to mix a rerun with files written for another preset, seed or config."""
    path = os.path.join(output_dir, INFO_FILENAME)
    if not os.path.exists(path):
        return
    try:
        with open(path, encoding="utf-8") as f:
            previous = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: unreadable info file from a previous run: {e}") from e
    old = {k: previous.get(k) for k in header}
    if old != header:
        raise ValueError(
            f"{output_dir} holds a synthetic dataset made with {old}, not {header}; "
            "use an empty --output_dir"
        )


def generate_dataset(
    output_dir: str,
    preset: str = "tiny",
    seed: int = 0,
    num_workers: int | None = None,
    **overrides: int,
) -> dict[str, Any]:
    """Generates (or completes) a synthetic landmark dataset.

    Args:
        output_dir: Destination folder (created if needed).
        preset: A key of PRESETS ('tiny' or 'demo').
        seed: Non-negative seed; the same seed gives byte-identical files.
        num_workers: Worker processes (None: all available cores; <= 1: in this process).
        **overrides: Values replacing preset entries (see PRESETS keys).

    Returns:
        The info dict also written to `synthetic_info.json`: preset, seed, config, counts,
        landmark ids per split and relative paths of the CSVs, image folders and ground truth.

    Raises:
        ValueError: Bad preset/option/seed, or `output_dir` holds another dataset.
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    seed = int(seed)
    config = resolve_config(preset, overrides)
    header = {"format": _INFO_FORMAT, "preset": preset, "seed": seed, "config": config}
    os.makedirs(output_dir, exist_ok=True)
    _check_previous_run(output_dir, header)
    info_path = os.path.join(output_dir, INFO_FILENAME)
    _atomic_write(info_path, json.dumps({**header, "complete": False}, indent=1).encode())

    n_train, n_test = config["num_train_landmarks"], config["num_test_landmarks"]
    n_distractor = config["num_distractor_landmarks"]
    label_ids = _landmark_ids(seed, n_train + n_test + n_distractor)
    train_ids = label_ids[:n_train]
    noisy_labels = _rng(seed, _NOISY).choice(n_train, size=config["num_noisy_train_images"])
    common = (output_dir, seed, config)
    # Test landmarks first: they have the most views per task (better load balance).
    tasks = [("test", *common, n_train + j) for j in range(n_test)]
    tasks += [("distractor", *common, n_train + n_test + j) for j in range(n_distractor)]
    tasks += [("train", *common, i, train_ids[i]) for i in range(n_train)]
    tasks += [("noisy", *common, k, train_ids[int(i)]) for k, i in enumerate(noisy_labels)]
    tasks += [("none", *common, k) for k in range(config["num_distractor_images"])]

    workers = usable_cores() if num_workers is None else int(num_workers)
    if workers <= 1:
        results = [_run_task(t) for t in tasks]
    else:
        # spawn, not fork: the caller (the demo) may already run TensorFlow threads.
        with multiprocessing.get_context("spawn").Pool(min(workers, len(tasks))) as pool:
            results = pool.map(_run_task, tasks, chunksize=1)
    records = [r for task_records in results for r in task_records]

    train_records = [r for r in records if "id" in r]
    test_records = [r for r in records if "role" in r]
    counts = _write_train_csvs(output_dir, train_records)
    gt = build_ground_truth(test_records)
    _write_ground_truth(output_dir, gt)
    labels = [r["label"] for r in test_records if r["role"] == "index" and r["label"]]
    counts.update(
        num_train_landmarks=n_train,
        num_test_landmarks=n_test,
        num_distractor_landmarks=n_distractor,
        num_queries=len(gt["qimlist"]),
        num_index_images=len(gt["imlist"]),
        num_easy=labels.count("easy"),
        num_hard=labels.count("hard"),
        num_junk=labels.count("junk"),
        num_distractor_images=sum(
            1 for r in test_records if r["role"] == "index" and r["label"] is None
        ),
    )
    info = {
        **header,
        "complete": True,
        "counts": counts,
        "landmark_ids": {
            "train": sorted(train_ids),
            "test": label_ids[n_train : n_train + n_test],
            "distractor": label_ids[n_train + n_test :],
        },
        "paths": {
            "train_csv": "train.csv",
            "train_clean_csv": "train_clean.csv",
            "train_directory": "train",
            "test_images": os.path.join("test", "jpg"),
            "ground_truth": GND_PICKLE,
            "ground_truth_json": GND_JSON,
        },
    }
    _atomic_write(info_path, json.dumps(info, indent=1).encode())
    return info


def landmark_plane(
    seed: int, landmark_index: int, plane_long_side: int, num_palettes: int
) -> Image.Image:
    """The plane of landmark `landmark_index` as generate_dataset composes it (for tests/demo)."""
    return _Landmark(seed, landmark_index, plane_long_side, num_palettes).plane
