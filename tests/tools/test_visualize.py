import subprocess
import sys

import numpy as np
from PIL import Image

from delg_tf.extraction.feature_store import FeatureStoreWriter
from tests.helpers.fake_export import export_brightness_model


def test_delg_visualize_writes_png(tmp_path):
    model = str(tmp_path / "export")
    export_brightness_model(model, threshold=None)
    Image.fromarray(np.full([64, 96, 3], 200, np.uint8)).save(tmp_path / "a.jpg")
    base = [
        sys.executable, "-m", "delg_tools.visualize", f"--model_path={model}",
        f"--image_path={tmp_path / 'a.jpg'}", f"--output_path={tmp_path / 'a.png'}",
    ]  # fmt: skip
    # Uncalibrated export: a clear error unless a threshold is given.
    failed = subprocess.run(base, capture_output=True, text=True, timeout=300)
    assert failed.returncode != 0 and "delg-calibrate-threshold" in failed.stderr
    result = subprocess.run(base + ["--attention_threshold=2.5"], capture_output=True, text=True,
                            timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    with Image.open(tmp_path / "a.png") as png:
        assert png.format == "PNG"


def _stores(tmp_path):
    """A query store and an index store by hand: x0 shares the query's features under an
    affine map (a true match), x1 and x2 do not; images on disk for all four."""
    rng = np.random.default_rng(0)
    n = 40
    descriptors = rng.normal(size=(n, 8)).astype(np.float32)
    descriptors /= np.linalg.norm(descriptors, axis=1, keepdims=True)
    locations = rng.uniform(5, 55, size=(n, 2)).astype(np.float32)
    ones = np.ones(n, np.float32)

    def local(desc, loc):
        return {"descriptors": desc, "locations": loc, "scales": ones, "attention": ones}

    images = tmp_path / "photos"
    images.mkdir()
    for name in ("q0", "x0", "x1", "x2"):
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(
            images / f"{name}.png"
        )
    query_dir, index_dir = str(tmp_path / "query"), str(tmp_path / "index")
    with FeatureStoreWriter(query_dir, 3, 8) as writer:
        writer.add("q0", np.array([1.0, 0, 0]), local(descriptors, locations))
    with FeatureStoreWriter(index_dir, 3, 8) as writer:
        writer.add("x0", np.array([0.6, 0.8, 0]), local(descriptors, locations * 0.9 + 3))
        for i, g in ((1, [0.9, 0.1, 0.1]), (2, [0.8, 0.6, 0])):
            other = rng.normal(size=(n, 8)).astype(np.float32)
            other /= np.linalg.norm(other, axis=1, keepdims=True)
            writer.add(f"x{i}", np.array(g) / np.linalg.norm(g), local(other, locations))
        writer.add_failure("x9", "x9.jpg: cannot decode")
    global_only = str(tmp_path / "global_only")
    with FeatureStoreWriter(global_only, 3, None) as writer:
        writer.add("x0", np.array([1.0, 0, 0]))
    return images, query_dir, index_dir, global_only


def _visualize(*flags):
    cmd = [sys.executable, "-m", "delg_tools.visualize", *flags]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def test_match_figure_from_two_stores_and_its_bad_inputs(tmp_path):
    """Issue 12: delg-visualize draws a query's top-k after re-ranking from two stores; a query
    id not in the store, a missing image and a store without local features are one line,
    exit 2."""
    images, query_dir, index_dir, global_only = _stores(tmp_path)
    out = tmp_path / "q0.png"
    base = [f"--query_features_dir={query_dir}", f"--images_dir={images}", "--query_id=q0"]
    result = _visualize(*base, f"--index_features_dir={index_dir}", "--top_k=3",
                        f"--output_path={out}")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    # x1 is first by global descriptor, x0 first after re-ranking (40 inliers).
    assert "'top': [('x0', 1, 40), ('x1', 2, " in result.stderr, result.stderr[-3000:]
    with Image.open(out) as png:
        assert png.format == "PNG" and png.size[0] > png.size[1]

    empty = tmp_path / "empty"
    empty.mkdir()
    for flags, words in (
        ([f"--index_features_dir={index_dir}", "--query_id=x9"], ["query 'x9'", query_dir]),
        ([f"--index_features_dir={index_dir}", "--index_id=x9"],
         ["index image 'x9'", "its extraction failed: x9.jpg: cannot decode"]),
        ([f"--index_features_dir={index_dir}", f"--query_images_dir={empty}"],
         [f"--query_images_dir={empty}: no image for query 'q0'"]),
        ([f"--index_features_dir={global_only}"], [f"{global_only} has no local features"]),
    ):  # fmt: skip
        failed = _visualize(*base, *flags, f"--output_path={tmp_path / 'bad.png'}")
        assert failed.returncode == 2, failed.stderr[-3000:]
        assert "Traceback" not in failed.stderr, failed.stderr[-3000:]
        [line] = [x for x in failed.stderr.splitlines() if x.startswith("delg-visualize:")]
        for word in words:
            assert word in line, line
    assert not (tmp_path / "bad.png").exists()
