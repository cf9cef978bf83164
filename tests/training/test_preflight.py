import os

import numpy as np
import pytest

from delg_tf.training import preflight


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)


def test_match_files_and_missing_pattern(tmp_path):
    for name in ("train-1", "train-0", "other"):
        _write(tmp_path / name, "")
    files = preflight.match_files("train_file_pattern", f"{tmp_path}/train-*")
    assert files == [f"{tmp_path}/train-0", f"{tmp_path}/train-1"]
    both = preflight.match_files("x", f"{tmp_path}/train-0,{tmp_path}/other")
    assert len(both) == 2
    with pytest.raises(preflight.FlagError, match="--train_file_pattern is required"):
        preflight.match_files("train_file_pattern", "")


def test_relabeling_resolution(tmp_path):
    pattern = f"{tmp_path}/train-*"
    _write(tmp_path / "relabeling.csv", "new_label,old_label\n1,17\n0,5\n2,30\n")
    assert preflight.resolve_num_classes(None, pattern) == 3
    assert preflight.resolve_num_classes(3, pattern) == 3
    with pytest.raises(preflight.FlagError, match="--num_classes=4 but .* lists 3 classes"):
        preflight.resolve_num_classes(4, pattern)
    os.remove(tmp_path / "relabeling.csv")
    assert preflight.resolve_num_classes(None, pattern, "gld_v2_clean") == 81313
    with pytest.raises(preflight.FlagError, match="--num_classes is not set"):
        preflight.resolve_num_classes(None, pattern)


@pytest.mark.parametrize(
    "text, message",
    [
        ("label,old\n0,1\n", "header"),
        ("new_label,old_label\n0,1\nx,2\n", r"relabeling.csv:3: bad new_label"),
        ("new_label,old_label\n0,1\n2,2\n", r"not exactly 0..1"),
    ],
)
def test_bad_relabeling_names_file_and_line(tmp_path, text, message):
    _write(tmp_path / "relabeling.csv", text)
    with pytest.raises(preflight.FlagError, match=message):
        preflight.read_relabeling(str(tmp_path / "relabeling.csv"))


def test_image_size_check():
    preflight.check_image_size(32, "resnet_tiny", 32)
    with pytest.raises(preflight.FlagError, match="--image_size=31 is too small"):
        preflight.check_image_size(31, "resnet_tiny", 32)


def test_torn_foreign_or_empty_training_files_are_named(tmp_path):
    # Issue 12 item 12 (class: a training file that is not readable TFRecords): TF's
    # DataLossError named neither the file nor the record.
    foreign = tmp_path / "train-foreign"
    foreign.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(preflight.FlagError) as error:
        preflight.check_labels([str(foreign)], num_classes=3)
    message = str(error.value)
    assert message.startswith(f"{foreign} record 0: not a readable TFRecord")
    assert "corrupted record" in message and "function_node" not in message
    empty = tmp_path / "train-empty"
    empty.write_bytes(b"")
    with pytest.raises(preflight.FlagError, match="matches only empty files"):
        preflight.check_labels([str(empty)], num_classes=3)
