import json
import os
import shutil
import subprocess
import sys

import numpy as np
from PIL import Image

from delg_tf.data.revisited_ground_truth import save_ground_truth_json  # noqa: E402
from delg_tf.export.export_settings import settings_path  # noqa: E402
from delg_tf.extraction.feature_store import FeatureStore, FeatureStoreWriter  # noqa: E402
from tests.helpers.fake_export import export_brightness_model


def run_tool(*flags):
    cmd = [sys.executable, "-m", "delg_tools.extract", *flags]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def test_revisited_queries_are_cropped_and_located_in_crop_pixels(tmp_path):
    model = str(tmp_path / "export")
    export_brightness_model(model, max_image_size=200)
    images = tmp_path / "jpg"
    images.mkdir()
    full = np.zeros([100, 200, 3], np.uint8)
    full[40:72, 100:164] = 255
    Image.fromarray(full).save(images / "q0.jpg", quality=100)
    Image.fromarray(full[:, ::-1].copy()).save(images / "x1.jpg", quality=100)
    gnd = str(tmp_path / "gnd.json")
    save_ground_truth_json(gnd, {
        "imlist": ["q0", "x1"], "qimlist": ["q0"],
        "gnd": [{"easy": [0], "hard": [], "junk": [1], "bbx": [96.0, 32.0, 176.0, 80.0]}],
    })  # fmt: skip
    out = str(tmp_path / "query_features")
    result = run_tool(f"--model_path={model}", f"--dataset_file_path={gnd}",
                      f"--images_dir={images}", "--image_set=query",
                      f"--output_features_dir={out}")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    store = FeatureStore(out)
    assert store.ids == ["q0"] and store.complete
    locations = store.local_features("q0")["locations"]
    # The crop starts at (y=32, x=96): the block lies at rows 8..40, cols 4..68 of the crop.
    assert len(locations) > 0
    assert np.all((locations[:, 0] > 8) & (locations[:, 0] < 40)), locations
    assert np.all((locations[:, 1] > 4) & (locations[:, 1] < 68)), locations
    assert os.path.exists(os.path.join(out, "flags.txt"))

    index_out = str(tmp_path / "index_features")
    result = run_tool(f"--model_path={model}", f"--dataset_file_path={gnd}",
                      f"--images_dir={images}", "--image_set=index",
                      f"--output_features_dir={index_out}")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert FeatureStore(index_out).ids == ["q0", "x1"]


def test_folder_with_bad_image_and_threshold_override(tmp_path):
    model = str(tmp_path / "export")
    export_brightness_model(model, max_image_size=200)
    images = tmp_path / "photos"
    images.mkdir()
    Image.fromarray(np.full([64, 64, 3], 255, np.uint8)).save(images / "white.png")
    (images / "bad.jpg").write_bytes(b"\xff\xd8 broken")
    out = str(tmp_path / "features")
    result = run_tool(f"--model_path={model}", f"--images_dir={images}",
                      f"--output_features_dir={out}", "--max_feature_num=5")  # fmt: skip
    assert result.returncode == 3, result.stderr[-3000:]  # finished; bad.jpg failed
    assert "bad.jpg" in result.stderr
    store = FeatureStore(out)
    assert store.ids == ["white"] and [i for i, _ in store.failures] == ["bad"]
    assert len(store.local_features("white")["attention"]) == 5


def test_savedmodel_without_settings_asset_takes_the_settings_from_flags(tmp_path):
    model = str(tmp_path / "export")
    settings = export_brightness_model(model, max_image_size=200)
    bare = str(tmp_path / "bare")
    shutil.copytree(model, bare)
    os.remove(settings_path(bare))  # as a SavedModel not written by delg-export
    images = tmp_path / "photos"
    images.mkdir()
    pixels = np.zeros([64, 96, 3], np.uint8)
    pixels[16:48, 40:80] = 255
    Image.fromarray(pixels).save(images / "block.png")

    refused = run_tool(f"--model_path={bare}", f"--images_dir={images}",
                       f"--output_features_dir={tmp_path / 'refused'}")  # fmt: skip
    assert refused.returncode == 2  # a usage error, one line (issue 12)
    assert "needs --attention_threshold" in refused.stderr
    assert not os.path.exists(tmp_path / "refused")

    from_asset = str(tmp_path / "from_asset")
    result = run_tool(f"--model_path={model}", f"--images_dir={images}",
                      f"--output_features_dir={from_asset}")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    from_flags = str(tmp_path / "from_flags")
    result = run_tool(
        f"--model_path={bare}", f"--images_dir={images}", f"--output_features_dir={from_flags}",
        f"--attention_threshold={settings.attention_threshold}",
        f"--image_scales={','.join(str(s) for s in settings.image_scales)}",
        f"--global_scales_ind={','.join(str(i) for i in settings.global_scales_ind)}",
        f"--max_image_size={settings.max_image_size}",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "has no assets/delg_export_settings.json" in result.stderr
    # The same settings, by flags instead of the asset, give the same features.
    a, b = FeatureStore(from_asset), FeatureStore(from_flags)
    assert a.ids == b.ids == ["block"]
    np.testing.assert_array_equal(a.global_descriptor("block"), b.global_descriptor("block"))
    local_a, local_b = a.local_features("block"), b.local_features("block")
    assert len(local_a["attention"]) > 0
    for key in local_a:
        np.testing.assert_array_equal(local_a[key], local_b[key], err_msg=key)


def _photos(folder, count=2):
    folder.mkdir()
    for i in range(count):
        pixels = np.zeros([64, 80, 3], np.uint8)
        pixels[8 * i : 8 * i + 32, 16:56] = 255
        Image.fromarray(pixels).save(folder / f"p{i}.png")
    return folder


def _one_line_error(result, *words):
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("delg-extract:")]
    assert len(errors) == 1, result.stderr[-3000:]
    for word in words:
        assert word in errors[0], errors[0]


def test_resume_with_another_export_or_setting_is_refused_naming_it(tmp_path):
    # Issue 12 item 2: the store records what made it (export identity + feature settings).
    model, other = str(tmp_path / "export"), str(tmp_path / "other_export")
    export_brightness_model(model, max_image_size=200)
    export_brightness_model(other, max_image_size=200, global_offset=3.0)  # same settings
    images = _photos(tmp_path / "photos")
    out = tmp_path / "features"
    first = run_tool(f"--model_path={model}", f"--images_dir={images}",
                     f"--output_features_dir={out}")  # fmt: skip
    assert first.returncode == 0, first.stderr[-3000:]
    flags_before = (out / "flags.txt").read_text()
    manifest_before = (out / "manifest.json").read_text()
    record = json.loads(manifest_before)["record"]
    assert record["export"].startswith("tf-fingerprint:") and record["max_image_size"] == 200
    (images / "p9.png").write_bytes((images / "p0.png").read_bytes())  # new work to resume

    for extra, word in (
        ([f"--model_path={other}"], "export="),
        ([f"--model_path={model}", "--attention_threshold=3.5"], "attention_threshold=2.99"),
        ([f"--model_path={model}", "--max_feature_num=7"], "max_feature_num="),
        ([f"--model_path={model}", "--max_image_size=100"], "max_image_size=200"),
        ([f"--model_path={model}", "--image_scales=1.0", "--global_scales_ind=0"],
         "image_scales="),
    ):  # fmt: skip
        refused = run_tool(*extra, f"--images_dir={images}", f"--output_features_dir={out}")
        _one_line_error(refused, word)
        assert (out / "flags.txt").read_text() == flags_before, extra
        assert (out / "manifest.json").read_text() == manifest_before, extra
    # A copy of the same export at another path is the same export: the resume goes on.
    copy = str(tmp_path / "copy_of_export")
    shutil.copytree(model, copy)
    resumed = run_tool(f"--model_path={copy}", f"--images_dir={images}",
                       f"--output_features_dir={out}")  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert FeatureStore(str(out)).ids == ["p0", "p1", "p9"]


def test_second_writer_is_refused_before_it_writes_anything(tmp_path):
    # Issue 12 item 3: the lock is taken before the record of the resolved flags is written.
    model = str(tmp_path / "export")
    export_brightness_model(model, max_image_size=200)
    images = _photos(tmp_path / "photos")
    out = tmp_path / "features"
    running = FeatureStoreWriter(str(out), 3, 2)  # the running writer holds the lock
    (out / "flags.txt").write_text("--the_running_writers_flags\n")
    files_before = sorted(os.listdir(out))
    try:
        refused = run_tool(f"--model_path={model}", f"--images_dir={images}",
                           f"--output_features_dir={out}")  # fmt: skip
        _one_line_error(refused, str(out), "another delg-extract is writing")
        assert (out / "flags.txt").read_text() == "--the_running_writers_flags\n"
        assert sorted(os.listdir(out)) == files_before
    finally:
        running.close()
    assert FeatureStore(str(out)).ids == []


def test_a_rerun_retries_images_that_were_missing_or_corrupt_and_are_fixed(tmp_path):
    # Issue 12 item 6: a file listed in --image_list but missing, and a corrupt file, failed
    # (exit 3); once the file is added and the corrupt one replaced, the same command extracts
    # both and exits 0 (it used to say "already done", leave them out and exit 0).
    model = str(tmp_path / "export")
    export_brightness_model(model, max_image_size=200)
    images = _photos(tmp_path / "photos")
    (images / "bad.jpg").write_bytes(b"\xff\xd8 broken")
    image_list = tmp_path / "list.txt"
    image_list.write_text("p0.png\nlate.png\nbad.jpg\np1.png\n")
    out = str(tmp_path / "features")
    command = [f"--model_path={model}", f"--image_list={image_list}", f"--images_dir={images}",
               f"--output_features_dir={out}"]  # fmt: skip
    first = run_tool(*command)
    assert first.returncode == 3, first.stderr[-3000:]
    assert "2 of 4 images failed" in first.stderr
    assert sorted(i for i, _ in FeatureStore(out).failures) == ["bad", "late"]
    shutil.copy(images / "p0.png", images / "late.png")
    shutil.copy(images / "p1.png", images / "bad.jpg")  # PNG bytes: Pillow reads by content
    second = run_tool(*command)
    assert second.returncode == 0, second.stderr[-3000:]
    store = FeatureStore(out)
    assert store.complete and store.failures == [] and sorted(store.ids) == [
        "bad", "late", "p0", "p1"
    ]  # fmt: skip
    np.testing.assert_array_equal(store.global_descriptor("late"), store.global_descriptor("p0"))
