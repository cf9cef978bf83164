"""ModelConfig: DelgModel's arguments as one record, and the model_config.json it gives."""

from __future__ import annotations

import dataclasses
import inspect
import json

import pytest

from delg_tf.models import DelgModel
from delg_tf.models import model_config as mc

# model_config.json as delg-tf wrote it before ModelConfig existed (keys in file order).
OLD_FILE_KEYS = [
    "name",
    "trainable",
    "dtype",
    "num_classes",
    "backbone",
    "backbone_weights",
    "block3_strides",
    "gem_power",
    "gem_trainable",
    "embedding_dim",
    "arcface_scale",
    "arcface_margin",
    "arcface_scale_trainable",
    "use_autoencoder",
    "autoencoder_dim",
    "attention_filters",
    "synchronized_bn",
    "attention_wiring",
]


def test_fields_are_exactly_the_constructor_arguments_with_their_defaults():
    parameters = inspect.signature(DelgModel.__init__).parameters
    arguments = {
        name: p.default
        for name, p in parameters.items()
        if name != "self" and p.kind != inspect.Parameter.VAR_KEYWORD
    }
    fields = {
        f.name: (inspect.Parameter.empty if f.default is dataclasses.MISSING else f.default)
        for f in dataclasses.fields(mc.ModelConfig)
    }
    assert list(fields) == list(arguments) == list(mc.field_names())
    assert fields == arguments


def test_marked_fields():
    assert mc.weight_shaping_fields() == (
        "num_classes",
        "backbone",
        "block3_strides",
        "gem_trainable",
        "embedding_dim",
        "arcface_scale_trainable",
        "use_autoencoder",
        "autoencoder_dim",
        "attention_filters",
        "attention_wiring",
    )
    assert mc.fine_tuning_fields() == (
        "backbone",
        "block3_strides",
        "gem_power",
        "gem_trainable",
        "embedding_dim",
        "arcface_scale",
        "arcface_scale_trainable",
        "use_autoencoder",
        "autoencoder_dim",
        "attention_filters",
        "attention_wiring",
    )


def test_model_built_from_a_config_gives_it_back_in_the_old_file_format():
    config = mc.ModelConfig(
        num_classes=7,
        backbone="resnet_tiny",
        embedding_dim=32,
        autoencoder_dim=8,
        attention_filters=16,
        attention_wiring="pre_2021",
    )
    model = DelgModel(**dataclasses.asdict(config))
    assert model.model_config == config and model.num_classes == 7
    saved = json.loads(json.dumps(model.get_config()))
    assert list(saved) == OLD_FILE_KEYS
    assert {k: saved[k] for k in mc.field_names()} == dataclasses.asdict(config)
    assert DelgModel.from_config(saved).model_config == config


def test_arguments_are_coerced_as_delg_model_did():
    config = mc.ModelConfig(num_classes=3.0, gem_power=3, use_autoencoder=1)
    assert (type(config.num_classes), type(config.gem_power), type(config.use_autoencoder)) == (
        int,
        float,
        bool,
    )


def test_read_model_config_fills_the_old_wiring_and_names_bad_files(tmp_path):
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"name": "delg", "num_classes": 4, "backbone": "resnet_tiny"}))
    assert mc.read_model_config(str(old))["attention_wiring"] == "pre_2021"
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(ValueError, match=r"broken.json: not valid JSON"):
        mc.read_model_config(str(broken))
    other = tmp_path / "other.json"
    other.write_text("[1]")
    with pytest.raises(ValueError, match=r"other.json: not a DelgModel config"):
        mc.read_model_config(str(other))
