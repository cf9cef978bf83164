"""Reads an official DELG extraction config (`delf_config.proto` text format, e.g.
`r50delg_gldv2clean_config.pbtxt`) into extraction settings.

No protoc and no compiled protos: the `DelfConfig` message is built at run time from a descriptor
defined here (field names, types and defaults of `research/delf/delf/protos/delf_config.proto`) and
parsed with protobuf's own text-format parser, so comments, `[a, b]` lists and every number form
parse as the official code parses them, and proto2 defaults apply where a field is not set.

Only what delg-extract can honour is accepted: the fields it reads (`image_scales`,
`max_image_size`, `delf_local_config.{max_feature_num, score_threshold}`,
`delf_global_config.image_scales_ind`), fields at the one value it implements (`use_pca: false`,
both feature kinds on, no square images, no minimum size, original-image coordinates, NMS IoU
1.0), and two informational ones (`model_path`, `is_tf2_exported`: the model kind is detected).
Anything else is a one-line error naming the field.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import numpy as np
import tensorflow as tf
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format

_PACKAGE = "delf.protos"
_F = descriptor_pb2.FieldDescriptorProto

# (name, number, type, label, default or None, message type or None), as in delf_config.proto.
_MESSAGES = {
    "DelfPcaParameters": [
        ("mean_path", 1, _F.TYPE_STRING, _F.LABEL_OPTIONAL, None, None),
        ("projection_matrix_path", 2, _F.TYPE_STRING, _F.LABEL_OPTIONAL, None, None),
        ("pca_dim", 3, _F.TYPE_INT32, _F.LABEL_OPTIONAL, None, None),
        ("use_whitening", 4, _F.TYPE_BOOL, _F.LABEL_OPTIONAL, "false", None),
        ("pca_variances_path", 5, _F.TYPE_STRING, _F.LABEL_OPTIONAL, None, None),
    ],
    "DelfLocalFeatureConfig": [
        ("use_pca", 1, _F.TYPE_BOOL, _F.LABEL_OPTIONAL, "true", None),
        ("layer_name", 2, _F.TYPE_STRING, _F.LABEL_OPTIONAL, "", None),
        ("iou_threshold", 3, _F.TYPE_FLOAT, _F.LABEL_OPTIONAL, "1.0", None),
        ("max_feature_num", 4, _F.TYPE_INT32, _F.LABEL_OPTIONAL, "1000", None),
        ("score_threshold", 5, _F.TYPE_FLOAT, _F.LABEL_OPTIONAL, "100.0", None),
        ("pca_parameters", 6, _F.TYPE_MESSAGE, _F.LABEL_OPTIONAL, None, "DelfPcaParameters"),
        ("use_resized_coordinates", 7, _F.TYPE_BOOL, _F.LABEL_OPTIONAL, "false", None),
    ],
    "DelfGlobalFeatureConfig": [
        ("use_pca", 1, _F.TYPE_BOOL, _F.LABEL_OPTIONAL, "true", None),
        ("pca_parameters", 2, _F.TYPE_MESSAGE, _F.LABEL_OPTIONAL, None, "DelfPcaParameters"),
        ("image_scales_ind", 3, _F.TYPE_INT32, _F.LABEL_REPEATED, None, None),
    ],
    "DelfConfig": [
        ("model_path", 1, _F.TYPE_STRING, _F.LABEL_OPTIONAL, None, None),
        ("image_scales", 2, _F.TYPE_FLOAT, _F.LABEL_REPEATED, None, None),
        ("delf_local_config", 3, _F.TYPE_MESSAGE, _F.LABEL_OPTIONAL, None,
         "DelfLocalFeatureConfig"),
        ("max_image_size", 4, _F.TYPE_INT32, _F.LABEL_OPTIONAL, "-1", None),
        ("min_image_size", 5, _F.TYPE_INT32, _F.LABEL_OPTIONAL, "-1", None),
        ("use_square_images", 6, _F.TYPE_BOOL, _F.LABEL_OPTIONAL, "false", None),
        ("use_local_features", 7, _F.TYPE_BOOL, _F.LABEL_OPTIONAL, "true", None),
        ("use_global_features", 8, _F.TYPE_BOOL, _F.LABEL_OPTIONAL, "false", None),
        ("delf_global_config", 9, _F.TYPE_MESSAGE, _F.LABEL_OPTIONAL, None,
         "DelfGlobalFeatureConfig"),
        ("is_tf2_exported", 10, _F.TYPE_BOOL, _F.LABEL_OPTIONAL, "false", None),
    ],
}  # fmt: skip

# Fields that may be set, and the value delg-extract needs (None: any value).
_ACCEPTED: dict[str, Any] = {
    "model_path": None,
    "is_tf2_exported": None,
    "image_scales": None,
    "max_image_size": None,
    "min_image_size": -1,
    "use_square_images": False,
    "use_local_features": True,
    "use_global_features": True,
    "delf_local_config.use_pca": False,
    "delf_local_config.max_feature_num": None,
    "delf_local_config.score_threshold": None,
    "delf_local_config.iou_threshold": 1.0,
    "delf_local_config.use_resized_coordinates": False,
    "delf_global_config.use_pca": False,
    "delf_global_config.image_scales_ind": None,
}


@functools.cache
def _delf_config_class():
    """The DelfConfig message class, built from the descriptor above in a private pool."""
    file = descriptor_pb2.FileDescriptorProto(
        name="delg_tf/delf_config.proto", package=_PACKAGE, syntax="proto2"
    )
    for message_name, fields in _MESSAGES.items():
        message = file.message_type.add(name=message_name)
        for name, number, kind, label, default, type_name in fields:
            field = message.field.add(name=name, number=number, type=kind, label=label)
            if default is not None:
                field.default_value = default
            if type_name is not None:
                field.type_name = f".{_PACKAGE}.{type_name}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.DelfConfig"))


@dataclasses.dataclass(frozen=True)
class OfficialConfig:
    """The extraction settings of an official DELG config.

    Attributes:
      image_scales: `image_scales`, the pyramid scales.
      global_scales_ind: `delf_global_config.image_scales_ind` (every scale when empty, as the
        official extractor).
      attention_threshold: `delf_local_config.score_threshold`.
      max_feature_num: `delf_local_config.max_feature_num`.
      max_image_size: `max_image_size`.
      model_path: `model_path` as written in the config (informational; --model_path wins).
    """

    image_scales: list[float]
    global_scales_ind: list[int]
    attention_threshold: float
    max_feature_num: int
    max_image_size: int
    model_path: str

    def options(self) -> dict[str, Any]:
        """As keyword arguments of `ExtractionOptions.from_settings`."""
        return {
            "image_scales": list(self.image_scales),
            "global_scales_ind": list(self.global_scales_ind),
            "attention_threshold": self.attention_threshold,
            "max_feature_num": self.max_feature_num,
            "max_image_size": self.max_image_size,
        }


def _set_fields(message, prefix: str = "") -> list[tuple[str, Any]]:
    """(dotted name, value) of every field set in `message`, recursively."""
    found = []
    for field, value in message.ListFields():
        name = prefix + field.name
        if field.type == field.TYPE_MESSAGE:
            found.append((name, None))
            found.extend(_set_fields(value, name + "."))
        else:
            repeated = not isinstance(value, str | bytes) and hasattr(value, "__len__")
            found.append((name, list(value) if repeated else value))
    return found


def _float32(value: float) -> float:
    """A proto float field's float32 value, as the shortest decimal that round-trips it.

    The value fed to the model is the same float32 (0.35355338 stays 0.35355338, not
    0.3535533845...), and logs and stores show the number written in the config.
    """
    return float(str(np.float32(value)))


def _text(value: Any) -> str:
    """A field value as the text format writes it (true/false in lower case)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def parse_official_config(text: str, source: str = "<string>") -> OfficialConfig:
    """Parses the text of an official DELG config.

    Args:
      text: `delf_config.proto` text format.
      source: Name used in error messages (the file).

    Returns:
      `OfficialConfig`.

    Raises:
      ValueError: one line naming the source, the field and the value, for a syntax error, an
        unknown field, a field delg-extract cannot honour, or a missing scale list.
    """
    config = _delf_config_class()()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as e:
        raise ValueError(f"{source}: {str(e).splitlines()[0]}") from None
    for name, value in _set_fields(config):
        if name in ("delf_local_config", "delf_global_config"):
            continue
        if name not in _ACCEPTED:
            raise ValueError(f"{source}: field {name} is not supported by delg-extract")
        wanted = _ACCEPTED[name]
        if wanted is not None and value != wanted:
            raise ValueError(
                f"{source}: {name}: {_text(value)} is not supported by delg-extract (it needs "
                f"{_text(wanted)})"
            )
    # Fields whose proto default is not what delg-extract does, when left unset.
    for name, message in (
        ("delf_local_config.use_pca", config.delf_local_config),
        ("delf_global_config.use_pca", config.delf_global_config),
    ):
        if message.use_pca:
            raise ValueError(
                f"{source}: {name} is true (the delf_config.proto default when unset): PCA is "
                "not supported, set use_pca: false"
            )
    if not config.use_global_features:
        raise ValueError(
            f"{source}: use_global_features is false (the delf_config.proto default when "
            "unset): delg-extract writes global and local features, set use_global_features: true"
        )
    scales = [_float32(s) for s in config.image_scales]
    if not scales or any(s <= 0 for s in scales):
        raise ValueError(f"{source}: image_scales must be positive and non-empty: {scales}")
    if config.max_image_size <= 0:
        raise ValueError(
            f"{source}: max_image_size is {config.max_image_size}: delg-extract needs a positive "
            "cap (the DELG configs use 1024)"
        )
    indices = list(config.delf_global_config.image_scales_ind) or list(range(len(scales)))
    bad = [i for i in indices if not 0 <= i < len(scales)]
    if bad:
        raise ValueError(
            f"{source}: delf_global_config.image_scales_ind {indices} must index image_scales "
            f"(length {len(scales)})"
        )
    return OfficialConfig(
        image_scales=scales,
        global_scales_ind=indices,
        attention_threshold=_float32(config.delf_local_config.score_threshold),
        max_feature_num=int(config.delf_local_config.max_feature_num),
        max_image_size=int(config.max_image_size),
        model_path=config.model_path,
    )


def read_official_config(path: str) -> OfficialConfig:
    """Reads an official DELG config file (see `parse_official_config`).

    Raises:
      ValueError: one line naming the file (missing, unreadable or invalid).
    """
    if not tf.io.gfile.exists(path):
        raise ValueError(f"{path}: no such file")
    with tf.io.gfile.GFile(path, "r") as f:
        return parse_official_config(f.read(), source=path)
