"""TrainConfig: the model section, the flat form train_config.json keeps, flag-named errors."""

from __future__ import annotations

import json

import pytest

from delg_tf.models.model_config import ModelConfig
from delg_tf.training import checkpointing
from delg_tf.training.config import TrainConfig
from delg_tf.training.errors import FlagError

# A train_config.json as delg-tf wrote it before the model had its own section.
OLD_TRAIN_CONFIG = {
    "attention_loss_weight": 1.0,
    "attention_wiring": "paper",
    "autoencoder_dimensions": 16,
    "backbone": "resnet_tiny",
    "batch_size": 8,
    "block3_strides": True,
    "checkpoint_iterator": True,
    "clip_norm": 10.0,
    "delg_arcface_margin": 0.1,
    "delg_embedding_layer_dim": 64,
    "delg_gem_power": 3.0,
    "delg_scale_factor_init": 45.25,
    "deterministic_input": True,
    "eval_batches": 0,
    "eval_interval": 1000,
    "imagenet_checkpoint": None,
    "init_checkpoint": "",
    "initial_lr": 0.01,
    "jit_compile": False,
    "keep_checkpoint_every_n_hours": 3.0,
    "logdir": "/tmp/run",
    "max_iters": 30,
    "max_to_keep": 10,
    "mixed_precision": False,
    "momentum": 0.9,
    "num_classes": 4,
    "op_determinism": False,
    "reconstruction_loss_weight": 10.0,
    "random_flip": False,
    "report_interval": 5,
    "save_interval": 10,
    "seed": 0,
    "steps_per_loop": 1,
    "strategy": "one_device",
    "summary_images": 4,
    "sync_batch_norm": True,
    "tfds_data_dir": "",
    "tfds_image_key": "image",
    "tfds_label_key": "label",
    "tfds_name": "",
    "tfds_split": "train",
    "tfds_validation_split": "",
    "tpu": "",
    "train_file_pattern": "/data/train-*",
    "use_augmentation": True,
    "use_autoencoder": True,
    "image_size": 64,
    "validation_file_pattern": "",
}


def test_an_old_train_config_reads_into_the_model_section_and_writes_back_the_same_keys():
    config = TrainConfig.from_json(json.dumps(OLD_TRAIN_CONFIG))
    assert config.model == ModelConfig(
        num_classes=4,
        backbone="resnet_tiny",
        embedding_dim=64,
        autoencoder_dim=16,
        synchronized_bn=True,
    )
    assert config.batch_size == 8 and config.image_size == 64
    written = json.loads(config.to_json())
    # The same keys and values, plus the three model arguments that have no flag.
    assert {k: v for k, v in written.items() if k in OLD_TRAIN_CONFIG} == OLD_TRAIN_CONFIG
    assert set(written) - set(OLD_TRAIN_CONFIG) == {
        "attention_filters",
        "gem_trainable",
        "arcface_scale_trainable",
    }
    assert TrainConfig.from_json(config.to_json()) == config


@pytest.mark.parametrize(
    "flag, value, message",
    [
        ("delg_embedding_layer_dim", 0, "--delg_embedding_layer_dim=0: must be positive"),
        ("delg_gem_power", float("nan"), "--delg_gem_power=nan: must be a finite number"),
        ("delg_arcface_margin", 2.0, "--delg_arcface_margin=2.0: must be below pi/2"),
        ("backbone", "vgg", "--backbone=vgg: choose one of"),
        ("attention_wiring", "x", "--attention_wiring='x': expected one of"),
    ],
)
def test_bad_model_settings_name_the_official_flag(flag, value, message):
    with pytest.raises(FlagError, match=message):
        TrainConfig.from_flat({**OLD_TRAIN_CONFIG, flag: value})


def test_an_unknown_setting_is_refused():
    with pytest.raises(TypeError, match="embedding_dim"):
        TrainConfig.from_flat({**OLD_TRAIN_CONFIG, "embedding_dim": 8})


def test_resume_check_reads_an_old_train_config_and_names_the_flag(tmp_path):
    (tmp_path / "train_config.json").write_text(json.dumps(OLD_TRAIN_CONFIG))
    same = TrainConfig.from_flat({**OLD_TRAIN_CONFIG, "logdir": str(tmp_path), "max_iters": 60})
    checkpointing.check_resumed_config(same, str(tmp_path))  # only the run length differs
    wider = TrainConfig.from_flat({**OLD_TRAIN_CONFIG, "autoencoder_dimensions": 8})
    with pytest.raises(FlagError, match=r"--autoencoder_dimensions=8 differs from .* \(16\)"):
        checkpointing.check_resumed_config(wider, str(tmp_path))
