import subprocess
import sys

import numpy as np
from PIL import Image

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
