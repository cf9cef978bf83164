"""A store of parts (what delg-extract --runner writes), without Beam: plan, parts, reader."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from delg_tf.extraction import store_parts
from delg_tf.extraction.extractor import extract_to_store
from delg_tf.extraction.feature_store import (
    FeatureStore,
    FeatureStoreError,
    FeatureStoreWriter,
    RecordMismatchError,
)
from delg_tf.extraction.image_inputs import folder_records
from delg_tf.extraction.part_extraction import PartJob, extract_part

RECORD = {"export": "sha256:00", "max_image_size": 64}


def fake_extractor(image, factors):
    """Global = (mean red, height, width); one local feature per 16-pixel row band."""
    image = np.asarray(image, np.float32)
    bands = max(1, image.shape[0] // 16)
    local = {
        "descriptors": np.stack([[image[16 * b :, :, 0].mean(), b] for b in range(bands)]),
        "locations": np.stack([[16.0 * b, 0.0] for b in range(bands)]) / factors[0],
        "scales": np.ones(bands),
        "attention": np.arange(bands) + 1.0,
    }
    return np.array([image[..., 0].mean(), *image.shape[:2]], np.float32), local


@pytest.fixture()
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(3)
    for i in range(7):
        pixels = rng.integers(0, 255, (20 + 6 * i, 30, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"im{i}.png")
    (folder / "im3.png").write_bytes(b"\x89PNG broken")  # a corrupt image in part-00001
    return folder


def _plan(out, records, images_per_part=3):
    parts = store_parts.split_into_parts(records, images_per_part)
    store_parts.open_parts_manifest(str(out), parts, RECORD, 3, 2, images_per_part)
    store_parts.write_plan(str(out), parts)
    return parts


def test_parts_read_as_one_store_equal_to_a_one_process_store(photos, tmp_path):
    records = folder_records(str(photos))
    single = str(tmp_path / "single")
    extract_to_store(records, fake_extractor, single, 3, 2, 64, show_progress=False)
    out = tmp_path / "parts"
    parts = _plan(out, records)
    assert [(n, [r.image_id for r in rs]) for n, rs in parts] == [
        ("part-00000", ["im0", "im1", "im2"]),
        ("part-00001", ["im3", "im4", "im5"]),
        ("part-00002", ["im6"]),
    ]
    job = PartJob(str(out), RECORD, 3, 2, max_image_size=64, shard_size=2)
    summaries = [extract_part(job, name, fake_extractor) for name, _ in parts]
    assert [s["extracted"] for s in summaries] == [3, 2, 1]
    assert summaries[1]["failures"][0][0] == "im3"
    manifest = store_parts.finish_parts_manifest(str(out), summaries)
    assert manifest["complete"] and manifest["num_images"] == 6
    assert [f[0] for f in manifest["failures"]] == ["im3"]  # reported once

    a, b = FeatureStore(single), FeatureStore(str(out))
    assert b.complete and b.missing_parts == []
    assert a.ids == b.ids == ["im0", "im1", "im2", "im4", "im5", "im6"]
    assert a.failures == b.failures
    np.testing.assert_array_equal(np.asarray(a.global_descriptors()), b.global_descriptors())
    for image_id in a.ids:
        for key, value in a.local_features(image_id).items():
            np.testing.assert_array_equal(value, b.local_features(image_id)[key])
    # A finished part is never redone: a second pass extracts nothing and changes no file.
    stamps = {p: os.stat(p).st_mtime_ns for p in _files(out / "part-00001")}
    again = [extract_part(job, name, fake_extractor) for name, _ in parts]
    assert [s["extracted"] for s in again] == [0, 0, 0]
    assert again == [{**s, "extracted": 0} for s in summaries]
    assert {p: os.stat(p).st_mtime_ns for p in _files(out / "part-00001")} == stamps


def _files(folder):
    return sorted(str(folder / n) for n in os.listdir(folder))


def test_unfinished_parts_are_missing_and_resume_after_their_last_shard(photos, tmp_path):
    records = folder_records(str(photos))
    out = tmp_path / "parts"
    parts = _plan(out, records)
    job = PartJob(str(out), RECORD, 3, 2, max_image_size=64, shard_size=1)
    extract_part(job, "part-00000", fake_extractor)
    # part-00001 dies after its first shard, as a killed worker would leave it.
    with pytest.raises(RuntimeError):
        with FeatureStoreWriter(str(out / "part-00001"), 3, 2, 1, record=RECORD) as writer:
            writer.add_failure("im3", "corrupt")
            writer.add("im4", *fake_extractor(np.zeros([20, 30, 3], np.uint8), np.ones(2)))
            raise RuntimeError("killed")
    store = FeatureStore(str(out))
    assert not store.complete and store.missing_parts == ["part-00001", "part-00002"]
    assert store.ids == ["im0", "im1", "im2"]
    summaries = [extract_part(job, name, fake_extractor) for name, _ in parts]
    assert [s["extracted"] for s in summaries] == [0, 1, 1]  # im5, im6: im3 + im4 were a shard
    store_parts.finish_parts_manifest(str(out), summaries)
    store = FeatureStore(str(out))
    assert store.complete and store.ids == ["im0", "im1", "im2", "im4", "im5", "im6"]


def test_a_resume_with_another_record_or_layout_is_refused(photos, tmp_path):
    records = folder_records(str(photos))
    out = tmp_path / "parts"
    parts = _plan(out, records)
    other = {**RECORD, "max_image_size": 32}
    with pytest.raises(RecordMismatchError, match="max_image_size=64.*max_image_size=32"):
        store_parts.open_parts_manifest(str(out), parts, other, 3, 2, 3)
    with pytest.raises(FeatureStoreError, match="store of parts"):
        FeatureStoreWriter(str(out), 3, 2)  # the in-process writer on a store of parts
    single = tmp_path / "single"
    FeatureStoreWriter(str(single), 3, 2).close()
    with pytest.raises(FeatureStoreError, match="written without --runner"):
        store_parts.open_parts_manifest(str(single), parts, RECORD, 3, 2, 3)
    assert json.loads((out / "manifest.json").read_text())["record"] == RECORD


def _download(url, local):
    """Copies a tf.io.gfile tree to a local folder (as `gcloud storage cp -r` would)."""
    import tensorflow as tf

    for folder, _, files in tf.io.gfile.walk(url):
        target = os.path.join(local, os.path.relpath(folder, url)) if folder != url else local
        os.makedirs(target, exist_ok=True)
        for name in files:
            tf.io.gfile.copy(f"{folder}/{name}", os.path.join(target, name), overwrite=True)


def test_a_remote_store_and_remote_images_go_through_gfile(photos, tmp_path):
    import tensorflow as tf

    # ram:// is TensorFlow's in-memory filesystem: a non-local path, as gs:// is on Dataflow.
    images = "ram://delg_test_photos"
    tf.io.gfile.makedirs(images)
    for name in sorted(os.listdir(photos)):
        tf.io.gfile.copy(str(photos / name), f"{images}/{name}")
    records = [
        type(r)(r.image_id, f"{images}/{os.path.basename(r.path)}")
        for r in folder_records(str(photos))
    ]
    out = "ram://delg_test_store"
    parts = store_parts.split_into_parts(records, 4)
    store_parts.open_parts_manifest(out, parts, RECORD, 3, 2, 4)
    store_parts.write_plan(out, parts)
    job = PartJob(out, RECORD, 3, 2, max_image_size=64)
    summaries = [extract_part(job, name, fake_extractor) for name, _ in parts]
    store_parts.finish_parts_manifest(out, summaries)
    assert tf.io.gfile.exists(f"{out}/part-00001/manifest.json")
    assert [s["extracted"] for s in summaries] == [3, 3]

    local = str(tmp_path / "copy")
    _download(out, local)
    single = str(tmp_path / "single")
    extract_to_store(folder_records(str(photos)), fake_extractor, single, 3, 2, 64,
                     show_progress=False)  # fmt: skip
    a, b = FeatureStore(single), FeatureStore(local)
    assert b.complete and a.ids == b.ids and a.failures[0][0] == b.failures[0][0] == "im3"
    np.testing.assert_array_equal(np.asarray(a.global_descriptors()), b.global_descriptors())


def test_a_finished_part_is_reopened_only_for_a_failure_whose_input_changed(photos, tmp_path):
    """Issue 12 item 6 on the distributed path: the one-process retry rule, per part."""
    records = folder_records(str(photos))
    out = tmp_path / "parts"
    parts = _plan(out, records)
    job = PartJob(str(out), RECORD, 3, 2, max_image_size=64, shard_size=2)
    [extract_part(job, name, fake_extractor) for name, _ in parts]
    Image.fromarray(np.full([40, 30, 3], 7, np.uint8)).save(photos / "im3.png")  # fixed
    stamps = {p: os.stat(p).st_mtime_ns for p in _files(out / "part-00000")}
    summaries = [extract_part(job, name, fake_extractor) for name, _ in parts]
    assert [s["extracted"] for s in summaries] == [0, 1, 0]
    assert [s["failures"] for s in summaries] == [[], [], []]
    assert {p: os.stat(p).st_mtime_ns for p in _files(out / "part-00000")} == stamps
    manifest = store_parts.finish_parts_manifest(str(out), summaries)
    assert manifest["num_failures"] == 0 and manifest["num_images"] == 7
    store = FeatureStore(str(out))
    assert store.complete and store.failures == []
    assert store.ids == ["im0", "im1", "im2", "im4", "im5", "im3", "im6"]  # the retry: last
    np.testing.assert_allclose(store.global_descriptor("im3"), [7, 40, 30])


def test_a_worker_applies_the_symlink_rule_of_the_folder(photos, tmp_path):
    """The plan keeps each record's folder, so a Beam worker refuses a link leaving it (it was
    lost in the plan: workers read any target)."""
    outside = tmp_path / "outside.png"
    Image.fromarray(np.zeros([40, 30, 3], np.uint8)).save(outside)
    (photos / "im9.png").symlink_to(outside)
    records = folder_records(str(photos))
    out = tmp_path / "parts"
    parts = _plan(out, records, images_per_part=10)
    job = PartJob(str(out), RECORD, 3, 2, max_image_size=64)
    [summary] = [extract_part(job, name, fake_extractor) for name, _ in parts]
    assert [f[0] for f in summary["failures"]] == ["im3", "im9"]
    assert "outside the image folder" in summary["failures"][1][1]
