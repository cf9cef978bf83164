"""Released-style TF1 and official-TF2-style models through the real delg-extract and
delg-evaluate binaries."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from delg_tf.data.revisited_ground_truth import save_ground_truth_json  # noqa: E402
from delg_tf.extraction.feature_store import FeatureStore  # noqa: E402
from tests.helpers.official_models import save_official_tf2_model, save_tf1_model  # noqa: E402

# An official config for the tiny network: the DELG configs' fields, tiny-sized values.
TINY_CONFIG = """\
use_local_features: true
use_global_features: true
model_path: "parameters/tiny"
image_scales: [0.5, 1.0, 2.0]
delf_local_config {
  use_pca: false
  max_feature_num: 1000
  score_threshold: 1.0
}
delf_global_config {
  use_pca: false
  image_scales_ind: [0, 1]
}
max_image_size: 200
"""
SETTINGS_FLAGS = ("--image_scales=0.5,1.0,2.0", "--global_scales_ind=0,1",
                  "--attention_threshold=1.0", "--max_image_size=200")  # fmt: skip
COLOURS = {"yellow": (255, 255, 0), "cyan": (0, 255, 255), "magenta": (255, 0, 255),
           "white": (255, 255, 255)}  # fmt: skip


def run_tool(module, *flags):
    cmd = [sys.executable, "-m", f"delg_tools.{module}", *flags]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """12 index images, one bright noisy block each (4 colours x 3 sizes); two queries that are
    index images, whole."""
    root = tmp_path_factory.mktemp("roxf")
    images = root / "jpg"
    images.mkdir()
    names = []
    for i, (colour_name, colour) in enumerate(COLOURS.items()):
        for j, side in enumerate((16, 24, 32)):
            pixels = np.zeros([72, 120, 3], np.uint8)
            top, left = 8 + 8 * j, 8 + 24 * i
            # Per-pixel noise makes every cell's descriptor distinct, so a feature's nearest
            # neighbour in its own image is itself (a flat block would give ties).
            noise = np.random.default_rng(len(names)).integers(0, 56, [side, side, 3])
            block = np.where(np.array(colour) > 0, 200 + noise, noise)
            pixels[top : top + side, left : left + side] = block.astype(np.uint8)
            names.append(f"{colour_name}{side}")
            Image.fromarray(pixels).save(images / f"{names[-1]}.jpg", quality=100)
    gnd = str(root / "gnd.json")
    full = [0.0, 0.0, 120.0, 72.0]
    save_ground_truth_json(gnd, {
        "imlist": names, "qimlist": ["yellow32", "cyan24"],
        "gnd": [{"easy": [2], "hard": [], "junk": [], "bbx": full},
                {"easy": [], "hard": [4], "junk": [3], "bbx": full}],
    })  # fmt: skip
    return root, gnd


@pytest.fixture(scope="module")
def tf1_model(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("released") / "tf1_model")
    save_tf1_model(path)
    return path


def extract_and_evaluate(model, dataset, out, *settings):
    root, gnd = dataset
    for image_set in ("query", "index"):
        result = run_tool(
            "extract", f"--model_path={model}", f"--dataset_file_path={gnd}",
            f"--images_dir={root / 'jpg'}", f"--image_set={image_set}",
            f"--output_features_dir={out / image_set}", *settings,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
    result = run_tool(
        "evaluate", f"--dataset_file_path={gnd}", f"--query_features_dir={out / 'query'}",
        f"--index_features_dir={out / 'index'}", f"--output_dir={out / 'metrics'}",
        "--use_geometric_verification",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((out / "metrics" / "metrics.json").read_text())["metrics"]


def test_released_tf1_and_official_tf2_models_run_through_extract_and_evaluate(
    dataset, tf1_model, tmp_path
):
    tf1, tf2 = tf1_model, str(tmp_path / "tf2_model")
    save_official_tf2_model(tf2)
    config = tmp_path / "tiny_config.pbtxt"
    config.write_text(TINY_CONFIG)
    tf1_metrics = extract_and_evaluate(
        tf1, dataset, tmp_path / "tf1", f"--official_config={config}"
    )
    tf2_metrics = extract_and_evaluate(tf2, dataset, tmp_path / "tf2", *SETTINGS_FLAGS)

    # Each query is an index image, whole: it ranks itself first, globally (cosine 1) and after
    # re-ranking (every feature an inlier; a tie in inliers goes to the higher cosine).
    for name in ("medium", "hard", "medium_after_gv", "hard_after_gv"):
        assert tf1_metrics[name]["mAP"] == pytest.approx(1.0), name
    assert tf1_metrics == tf2_metrics
    # The same network in its two official forms gives the same stores.
    for image_set in ("query", "index"):
        a, b = (
            FeatureStore(str(tmp_path / "tf1" / image_set)),
            FeatureStore(str(tmp_path / "tf2" / image_set)),
        )
        assert a.complete and a.ids == b.ids and len(a.ids) == (2 if image_set == "query" else 12)
        for image_id in a.ids:
            global_a = a.global_descriptor(image_id)
            assert np.isclose(np.linalg.norm(global_a), 1.0)
            np.testing.assert_allclose(global_a, b.global_descriptor(image_id), rtol=1e-6)
            local_a, local_b = a.local_features(image_id), b.local_features(image_id)
            assert len(local_a["attention"]) > 0 and np.all(local_a["attention"] >= 1.0)
            for key in local_a:
                np.testing.assert_allclose(local_a[key], local_b[key], rtol=1e-6, err_msg=key)
    flags_text = (tmp_path / "tf1" / "query" / "flags.txt").read_text()
    assert f"--official_config={config}" in flags_text


def test_bad_official_config_is_refused_before_any_output(dataset, tf1_model, tmp_path):
    tf1 = tf1_model
    config = tmp_path / "pca_config.pbtxt"
    config.write_text(TINY_CONFIG.replace("use_pca: false\n  max", "use_pca: true\n  max"))
    out = tmp_path / "refused"
    result = run_tool("extract", f"--model_path={tf1}", f"--images_dir={dataset[0] / 'jpg'}",
                      f"--output_features_dir={out}", f"--official_config={config}")  # fmt: skip
    assert result.returncode != 0
    assert (
        f"--official_config: {config}: delf_local_config.use_pca: true is not supported"
        in result.stderr
    )
    assert not out.exists()
