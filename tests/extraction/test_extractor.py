import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from PIL import Image

from delg_tf.extraction.extractor import (
    ExtractionOptions,
    SavedModelExtractor,
    extract_to_store,
)
from delg_tf.extraction.feature_store import FeatureStore
from delg_tf.extraction.image_inputs import ImageRecord, folder_records, load_image
from tests.helpers.fake_export import export_brightness_model


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("fake") / "export")
    export_brightness_model(path, max_image_size=200)
    return path


def block_image(h=200, w=400, rows=(80, 128), cols=(160, 256)):
    image = np.zeros([h, w, 3], np.uint8)
    image[rows[0] : rows[1], cols[0] : cols[1]] = 255
    return image


def write_images(directory, n, seed=0):
    rng = np.random.default_rng(seed)
    os.makedirs(directory, exist_ok=True)
    for i in range(n):
        h, w = rng.integers(40, 90, size=2)
        top, left = rng.integers(0, 20, size=2)
        Image.fromarray(block_image(h, w, (top, top + 24), (left, left + 24))).save(
            os.path.join(directory, f"img{i:03d}.png")
        )


def test_keypoints_map_back_to_original_pixels(model_path, tmp_path):
    path = tmp_path / "block.png"
    Image.fromarray(block_image()).save(path)
    extractor = SavedModelExtractor(model_path)
    image, factors = load_image(ImageRecord("b", str(path)), extractor.options.max_image_size)
    assert image.shape == (100, 200, 3)  # 400 px long side capped at 200
    global_desc, local = extractor(image, factors)
    locations = local["locations"]
    assert len(locations) >= 10
    assert np.all((locations[:, 0] > 80) & (locations[:, 0] < 128)), locations
    assert np.all((locations[:, 1] > 160) & (locations[:, 1] < 256)), locations
    assert set(np.unique(local["scales"])) <= {2.0, 1.0, 0.5}  # 1 / pyramid scale
    np.testing.assert_allclose(np.linalg.norm(local["descriptors"], axis=1), 1.0, rtol=1e-6)
    assert np.all(np.diff(local["attention"]) <= 0)
    assert global_desc.shape == (3,) and np.isclose(np.linalg.norm(global_desc), 1.0)


def test_options_override_settings(model_path):
    extractor = SavedModelExtractor(model_path)
    options = ExtractionOptions.from_settings(
        extractor.settings, attention_threshold=-1.0, max_feature_num=4, image_scales=[1.0],
        global_scales_ind=[0],
    )  # fmt: skip
    small = SavedModelExtractor(model_path, options)
    _, local = small(block_image(64, 64), np.ones(2, np.float32))
    assert len(local["attention"]) == 4
    with pytest.raises(ValueError, match="global_scales_ind"):
        ExtractionOptions.from_settings(extractor.settings, global_scales_ind=[7])


def test_bad_images_are_skipped_and_reported(model_path, tmp_path):
    images = tmp_path / "images"
    write_images(str(images), 3)
    (images / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    good = images / "img000.png"
    (images / "truncated.png").write_bytes(good.read_bytes()[:60])
    records = folder_records(str(images))
    extractor = SavedModelExtractor(model_path)
    out = str(tmp_path / "features")
    summary = extract_to_store(
        records, extractor, out, global_dim=3, local_dim=2, max_image_size=200,
        show_progress=False,
    )  # fmt: skip
    assert summary.extracted == 3
    assert sorted(i for i, _ in summary.failures) == ["corrupt", "truncated"]
    assert all("corrupt.jpg" in r or "truncated.png" in r for _, r in summary.failures)
    store = FeatureStore(out)
    assert store.complete and sorted(store.ids) == ["img000", "img001", "img002"]
    assert sorted(i for i, _ in store.failures) == ["corrupt", "truncated"]


class Interrupted(Exception):
    pass


def test_interrupted_run_resumes_without_duplicates_or_losses(model_path, tmp_path):
    images = tmp_path / "images"
    write_images(str(images), 7)
    records = folder_records(str(images))
    extractor = SavedModelExtractor(model_path)
    kwargs = dict(global_dim=3, local_dim=2, max_image_size=200, shard_size=2,
                  show_progress=False)  # fmt: skip

    calls = []

    def dies_after_five(image, factors):
        if len(calls) == 5:
            raise Interrupted()
        calls.append(1)
        return extractor(image, factors)

    out = str(tmp_path / "resumed")
    with pytest.raises(Interrupted):
        extract_to_store(records, dies_after_five, out, **kwargs)
    partial = FeatureStore(out)
    assert not partial.complete and len(partial) == 4  # two complete shards survive
    summary = extract_to_store(records, extractor, out, **kwargs)
    assert summary.skipped_done == 4 and summary.extracted == 3
    reference = str(tmp_path / "reference")
    extract_to_store(records, extractor, reference, **kwargs)
    resumed, ref = FeatureStore(out), FeatureStore(reference)
    assert resumed.complete and resumed.ids == ref.ids == [r.image_id for r in records]
    for image_id in ref.ids:
        np.testing.assert_array_equal(
            resumed.global_descriptor(image_id), ref.global_descriptor(image_id)
        )
        for key, value in ref.local_features(image_id).items():
            np.testing.assert_array_equal(resumed.local_features(image_id)[key], value)


def test_killed_process_resumes(model_path, tmp_path):
    images = tmp_path / "images"
    write_images(str(images), 8, seed=1)
    out = str(tmp_path / "features")
    script = textwrap.dedent(
        f"""
        import time
        from delg_tf.extraction.extractor import SavedModelExtractor, extract_to_store
        from delg_tf.extraction.image_inputs import folder_records
        extractor = SavedModelExtractor({model_path!r})
        def slow(image, factors):
            time.sleep(0.4)
            return extractor(image, factors)
        extract_to_store(folder_records({str(images)!r}), slow, {out!r}, global_dim=3,
                         local_dim=2, max_image_size=200, shard_size=2, show_progress=False)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE)
    manifest = os.path.join(out, "manifest.json")
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if os.path.exists(manifest) and json.load(open(manifest))["num_images"] >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed = FeatureStore(out)
    assert not killed.complete and 2 <= len(killed) < 8
    records = folder_records(str(images))
    summary = extract_to_store(
        records, SavedModelExtractor(model_path), out, global_dim=3, local_dim=2,
        max_image_size=200, shard_size=2, show_progress=False,
    )  # fmt: skip
    assert summary.skipped_done == len(killed)
    store = FeatureStore(out)
    assert store.complete and store.ids == [r.image_id for r in records]


def _mean_extractor(image, factors):
    """Global = (mean, height, width); one local feature: enough to tell images apart."""
    image = np.asarray(image, np.float32)
    local = {
        "descriptors": np.array([[image.mean(), 1.0]]),
        "locations": np.zeros([1, 2]),
        "scales": np.ones(1),
        "attention": np.ones(1),
    }
    return np.array([image.mean(), *image.shape[:2]], np.float32), local


def test_a_failure_is_retried_when_its_input_changed_and_only_then(tmp_path, monkeypatch):
    """Issue 12 item 6, the retry rule: a file added later, a corrupt file replaced, and a model
    failure are retried; a still-corrupt file is reported again without being decoded again; a
    stored image is never redone."""
    from delg_tf.extraction import extractor as extractor_module

    images = tmp_path / "images"
    write_images(str(images), 2)
    (images / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    (images / "still.jpg").write_bytes(b"\xff\xd8\xff\xe0 still not a jpeg")
    (images / "model.png").write_bytes((images / "img000.png").read_bytes())
    listed = ["img000.png", "img001.png", "corrupt.jpg", "still.jpg", "model.png", "late.png"]
    records = [
        ImageRecord(os.path.splitext(n)[0], str(images / n), root=str(images)) for n in listed
    ]
    decoded = []
    real_load = extractor_module.load_image

    def counting_load(record, max_image_size):
        decoded.append(record.image_id)
        return real_load(record, max_image_size)

    monkeypatch.setattr(extractor_module, "load_image", counting_load)

    def model_fails_once(image, factors, calls=[]):  # noqa: B006 - counts calls across runs
        if len(calls) == 2:  # model.png, the third image the model sees in the first run
            calls.append(1)
            raise ValueError("out of memory")
        calls.append(1)
        return _mean_extractor(image, factors)

    out = str(tmp_path / "features")
    kwargs = dict(global_dim=3, local_dim=2, max_image_size=200, show_progress=False)
    first = extract_to_store(records, model_fails_once, out, **kwargs)
    assert first.extracted == 2
    assert sorted(i for i, _ in first.failures) == ["corrupt", "late", "model", "still"]

    Image.fromarray(block_image(60, 70)).save(images / "late.png")  # added to the folder
    Image.fromarray(block_image(50, 80)).save(images / "corrupt.jpg")  # replaced by a good one
    decoded.clear()
    second = extract_to_store(records, model_fails_once, out, **kwargs)
    assert sorted(decoded) == ["corrupt", "late", "model"]  # not still.jpg, not img000/img001
    assert second.retried == 3 and second.extracted == 3 and second.failures == []
    store = FeatureStore(out)
    assert store.complete
    assert store.ids == ["img000", "img001", "corrupt", "model", "late"]
    assert [i for i, _ in store.failures] == ["still"]
    assert store.manifest["num_failures"] == 1
    np.testing.assert_allclose(store.global_descriptor("late")[1:], [60, 70])
    np.testing.assert_allclose(store.global_descriptor("corrupt")[1:], [50, 80])

    decoded.clear()
    third = extract_to_store(records, model_fails_once, out, **kwargs)
    assert decoded == [] and third.retried == 0 and third.skipped_done == len(records)
    assert [i for i, _ in FeatureStore(out).failures] == ["still"]  # reported again
