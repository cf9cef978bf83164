import json

import numpy as np
import pytest
import tensorflow as tf

from delg_tf.export.export_settings import (
    ExportSettings,
    read_settings,
    set_attention_threshold,
    settings_path,
    threshold_from_settings_text,
    write_settings_file,
)


def make_settings(**kw):
    base = dict(
        backbone="resnet_tiny",
        block3_strides=True,
        input_normalization="delf",
        global_dim=16,
        local_dim=8,
        receptive_field={"size": 291, "stride": 32, "padding": 145},
    )
    base.update(kw)
    return ExportSettings(**base)


def test_round_trip_and_official_defaults(tmp_path):
    write_settings_file(settings_path(str(tmp_path)), make_settings())
    got = read_settings(str(tmp_path))
    assert got == make_settings()
    assert got.global_scales_ind == [3, 4, 5]
    np.testing.assert_allclose(
        [got.image_scales[i] for i in got.global_scales_ind], [2**-0.5, 1.0, 2**0.5], rtol=1e-6
    )
    assert got.max_feature_num == 1000 and got.max_image_size == 1024


def test_set_threshold_is_parsed_in_graph(tmp_path):
    write_settings_file(settings_path(str(tmp_path)), make_settings())
    set_attention_threshold(str(tmp_path), 454.6, {"method": "test"})
    text = tf.io.read_file(settings_path(str(tmp_path)))
    assert threshold_from_settings_text(text).numpy() == pytest.approx(454.6)
    assert read_settings(str(tmp_path)).calibration == {"method": "test"}


def test_uncalibrated_threshold_fails_clearly(tmp_path):
    text = tf.constant(make_settings().to_json())
    with pytest.raises(tf.errors.InvalidArgumentError, match="delg-calibrate-threshold"):
        threshold_from_settings_text(text)


def test_bad_files_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a delg-export"):
        read_settings(str(tmp_path))
    path = settings_path(str(tmp_path))
    tmp_path.joinpath("assets").mkdir()
    tmp_path.joinpath("assets", "delg_export_settings.json").write_text("{oops")
    with pytest.raises(ValueError, match="not valid JSON"):
        read_settings(str(tmp_path))
    data = json.loads(make_settings().to_json())
    data["global_scales_ind"] = [9]
    tmp_path.joinpath("assets", "delg_export_settings.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="global_scales_ind"):
        read_settings(str(tmp_path))
    data["surprise"] = 1
    with open(path, "w") as f:
        json.dump(data, f)
    with pytest.raises(ValueError, match="unknown settings keys"):
        read_settings(str(tmp_path))
