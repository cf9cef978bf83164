import os

import pytest

from delg_tf.benchmark.demo_model import DemoModel, read_demo_model, read_flagfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_the_demo_model_is_the_one_demo_cpu_flags_trains():
    model = read_demo_model(os.path.join(REPO, "experiments", "demo_cpu.flags"))
    assert model == DemoModel(
        backbone="resnet_tiny", image_size=128, batch_size=32, embedding_dim=128, autoencoder_dim=64
    )


def test_flagfile_errors_name_the_file_line_and_flag(tmp_path):
    path = tmp_path / "x.flags"
    path.write_text("# comment\n\n--a=1\n--b=x=y\n")
    assert read_flagfile(str(path)) == {"a": "1", "b": "x=y"}
    path.write_text("--a=1\nnot a flag\n")
    with pytest.raises(ValueError, match=r"x.flags:2: expected --name=value"):
        read_flagfile(str(path))
    path.write_text("--backbone=resnet_tiny\n--image_size=128\n--batch_size=8\n")
    with pytest.raises(ValueError, match="no --delg_embedding_layer_dim"):
        read_demo_model(str(path))
    path.write_text(
        "--backbone=b\n--image_size=big\n--batch_size=8\n"
        "--delg_embedding_layer_dim=4\n--autoencoder_dimensions=2\n"
    )
    with pytest.raises(ValueError, match="--image_size=big is not an integer"):
        read_demo_model(str(path))
