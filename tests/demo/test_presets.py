"""Tests of the demo's presets."""

from delg_tf.demo.presets import PRESET_SETTINGS, PRESETS

_KEYS = {
    "synthetic",
    "num_shards",
    "train_flags",
    "calibration_images",
    "calibration_target",
    "num_to_rerank",
}


def test_every_preset_has_every_setting():
    assert set(PRESET_SETTINGS) == set(PRESETS)
    for settings in PRESET_SETTINGS.values():
        assert set(settings) == _KEYS


def test_demo_preset_keeps_the_official_rerank_depth():
    assert PRESET_SETTINGS["demo"]["num_to_rerank"] == 100
    assert PRESET_SETTINGS["demo"]["train_flags"] == []
