import subprocess
import sys

import numpy as np
from PIL import Image

from delg_tf.export.export_settings import read_settings  # noqa: E402
from tests.helpers.fake_export import export_brightness_model


def test_calibration_writes_threshold_giving_target_median(tmp_path):
    model = str(tmp_path / "export")
    export_brightness_model(model, threshold=None, image_scales=[1.0], global_scales_ind=[0])
    images = tmp_path / "images"
    images.mkdir()
    # 64x64 images, 64 cells at scale 1: in image k the 8 cells of the first row have brightness
    # 40(k + 1), the other 56 are black.
    for k in range(5):
        image = np.zeros([64, 64, 3], np.uint8)
        image[:8, :] = 40 * (k + 1)  # the first cell row, brighter per image
        Image.fromarray(image).save(images / f"i{k}.png")
    (images / "broken.png").write_bytes(b"nope")
    cmd = [sys.executable, "-m", "delg_tools.calibrate_threshold", f"--model_path={model}",
           f"--images_dir={images}", "--target_features=8"]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    # 3: finished, but a sample (broken.png) could not be read (the binaries' exit convention).
    assert result.returncode == 3, result.stderr[-3000:]
    settings = read_settings(model)
    # Each image: 8 cells at 2 + (40(k+1) - 128) / 128, 56 at 1.0. The median image (k=2) sets
    # the threshold at its 8th highest score.
    np.testing.assert_allclose(settings.attention_threshold, 2 + (120 - 128) / 128, rtol=1e-6)
    assert settings.calibration["median_features"] == 8
    assert settings.calibration["num_images"] == 5
    assert "median_features=8" in result.stdout and "1 unreadable" in result.stdout
