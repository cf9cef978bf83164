"""The architecture of a `DelgModel`: one record of its constructor arguments.

`ModelConfig`'s fields are exactly `DelgModel.__init__`'s arguments, so a config is passed whole
(`DelgModel(**dataclasses.asdict(config))`) and `DelgModel.get_config()` is
`dataclasses.asdict(model.model_config)` plus the Keras keys (`name`, `trainable`, `dtype`).
That dict is the logdir's `model_config.json` (`delg_tf.common.logdir`); `read_model_config`
reads it for training, export and extraction alike (none of which imports the others).

Each field says on itself what a checkpoint ties it to (`dataclasses.field` metadata):
`WEIGHT_SHAPING` fields decide which variables exist and their shapes, or what the trained
weights mean (the local stride, the attention wiring): a resumed run must keep them and a
fine-tuned run takes them from its source. `FINE_TUNING_KEEPS` fields are fixed scalars the
source was trained with (GeM p, ArcFace s), which a fine-tuned run takes too.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import tensorflow as tf

from delg_tf.models.attention_wiring import PAPER, attention_wiring_of

WEIGHT_SHAPING = "weight_shaping"
FINE_TUNING_KEEPS = "fine_tuning_keeps"
# The coercions DelgModel applied to its arguments (JSON and flags give the right types anyway).
_CASTS = {"int": int, "float": float, "bool": bool}


def _field(default: Any = dataclasses.MISSING, *, weight_shaping: bool = False, keep=False):
    return dataclasses.field(
        default=default, metadata={WEIGHT_SHAPING: weight_shaping, FINE_TUNING_KEEPS: keep}
    )


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """`DelgModel`'s arguments; see its docstring for the meaning of each.

    Attributes:
      num_classes: training classes N (ArcFace and attention classifier widths).
      backbone: registry name (`delg_tf.models.backbones.BACKBONES`).
      backbone_weights: None, "imagenet" or a local Keras weights file (read once, at build).
      block3_strides: local features at stride 32 instead of 16.
      gem_power: GeM p.
      gem_trainable: learn p (a variable).
      embedding_dim: global descriptor size D.
      arcface_scale: ArcFace s.
      arcface_margin: ArcFace m (radians).
      arcface_scale_trainable: learn s (a variable).
      use_autoencoder: reduce local descriptors with the autoencoder.
      autoencoder_dim: local descriptor size d.
      attention_filters: hidden channels of the attention module.
      synchronized_bn: cross-replica BatchNorm.
      attention_wiring: "paper" or "pre_2021" (`delg_tf.models.attention_wiring`).
    """

    num_classes: int = _field(weight_shaping=True)
    backbone: str = _field("resnet50", weight_shaping=True)
    backbone_weights: str | None = _field(None)
    block3_strides: bool = _field(True, weight_shaping=True)
    gem_power: float = _field(3.0, keep=True)
    gem_trainable: bool = _field(False, weight_shaping=True)
    embedding_dim: int = _field(2048, weight_shaping=True)
    arcface_scale: float = _field(45.25, keep=True)
    arcface_margin: float = _field(0.1)
    arcface_scale_trainable: bool = _field(False, weight_shaping=True)
    use_autoencoder: bool = _field(True, weight_shaping=True)
    autoencoder_dim: int = _field(128, weight_shaping=True)
    attention_filters: int = _field(512, weight_shaping=True)
    synchronized_bn: bool = _field(False)
    attention_wiring: str = _field(PAPER, weight_shaping=True)

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            cast = _CASTS.get(field.type)
            if cast is not None:
                object.__setattr__(self, field.name, cast(getattr(self, field.name)))


def field_names() -> tuple[str, ...]:
    """Every `ModelConfig` field, in `DelgModel.__init__` order."""
    return tuple(field.name for field in dataclasses.fields(ModelConfig))


def weight_shaping_fields() -> tuple[str, ...]:
    """The fields a checkpoint's weights depend on: a resumed run must not change them."""
    return tuple(f.name for f in dataclasses.fields(ModelConfig) if f.metadata[WEIGHT_SHAPING])


def fine_tuning_fields() -> tuple[str, ...]:
    """What a fine-tuned run takes from its source: the weight-shaping fields but the class
    count (its own data decides it; the classifiers restart) and the fixed GeM p / ArcFace s."""
    return tuple(
        f.name
        for f in dataclasses.fields(ModelConfig)
        if (f.metadata[WEIGHT_SHAPING] or f.metadata[FINE_TUNING_KEEPS]) and f.name != "num_classes"
    )


def read_model_config(path: str) -> dict[str, Any]:
    """Reads a `model_config.json` (`DelgModel.get_config()`); errors name the file.

    A config without `attention_wiring` (written before delg-tf recorded it) is returned with
    `"pre_2021"` filled in, after one warning naming the file.

    Raises:
      ValueError: naming the file, if it is not JSON, not a DelgModel config or names an unknown
        attention wiring.
    """
    try:
        with tf.io.gfile.GFile(path, "r") as f:
            config = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(config, dict) or "num_classes" not in config:
        raise ValueError(f"{path}: not a DelgModel config (no num_classes)")
    try:
        config["attention_wiring"] = attention_wiring_of(config, source=path)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from e
    return config
