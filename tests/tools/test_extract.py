import os
import shutil
import subprocess
import sys

import numpy as np
from PIL import Image

from delg_tf.data.revisited_ground_truth import save_ground_truth_json  # noqa: E402
from delg_tf.export.export_settings import settings_path  # noqa: E402
from delg_tf.extraction.feature_store import FeatureStore  # noqa: E402
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
    assert result.returncode == 0, result.stderr[-3000:]
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
    assert refused.returncode == 1
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
