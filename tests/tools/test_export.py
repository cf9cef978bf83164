import subprocess
import sys

import tensorflow as tf

from delg_tf.export.export_settings import read_settings  # noqa: E402
from tests.helpers.export_fixtures import write_training_logdir


def test_delg_export_binary(tmp_path):
    write_training_logdir(str(tmp_path / "logdir"))
    export_path = tmp_path / "exported"
    cmd = [
        sys.executable, "-m", "delg_tools.export",
        f"--ckpt_path={tmp_path / 'logdir'}", f"--export_path={export_path}",
        "--image_scales=0.5,1.0", "--global_scales_ind=1", "--attention_threshold=1.5",
    ]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    settings = read_settings(str(export_path))
    assert settings.image_scales == [0.5, 1.0] and settings.global_scales_ind == [1]
    assert settings.attention_threshold == 1.5
    assert "--ckpt_path" in (export_path / "flags.txt").read_text()
    local = tf.saved_model.load(str(export_path)).signatures["extract_local"]
    out = local(input_image=tf.zeros([64, 64, 3], tf.uint8))
    assert out["descriptors"].shape[1] == 8
    # Refuses an existing export and names it.
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode != 0 and "already exists" in again.stderr
