"""The settings an export records for extraction: one JSON asset inside the SavedModel.

`<export>/assets/delg_export_settings.json` holds what the graph alone cannot tell a user: the
backbone, descriptor sizes, receptive field, default scales and the calibrated attention
threshold. Extraction reads it, so a user passes only the model path. The threshold is read by the
named local signature at run time (the asset path resolves to the loaded copy), which lets
`delg-calibrate-threshold` set it after export without re-saving the graph.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Any

import tensorflow as tf

from delg_tf.common.atomic_files import write_text_atomically
from delg_tf.export.global_pooling import GlobalPooling

SETTINGS_FILENAME = "delg_export_settings.json"
FORMAT_VERSION = 1

# Official DELG extraction configs (`delg/r50delg_gldv2clean_config.pbtxt`, `delf_config.proto`).
DEFAULT_IMAGE_SCALES = (0.25, 0.35355338, 0.5, 0.70710677, 1.0, 1.4142135, 2.0)
DEFAULT_GLOBAL_SCALES_IND = (3, 4, 5)
DEFAULT_MAX_FEATURE_NUM = 1000
DEFAULT_MAX_IMAGE_SIZE = 1024


@dataclasses.dataclass
class ExportSettings:
    """Everything extraction needs to know about an export.

    Attributes:
      backbone: Backbone registry name.
      block3_strides: Whether the local map was subsampled to stride 32.
      input_normalization: "caffe" or "delf", applied inside the graph to uint8 input.
      global_dim: D, global descriptor size.
      local_dim: d, local descriptor size.
      receptive_field: {"size", "stride", "padding"} of the local map, in input pixels.
      image_scales: Pyramid scales used for local features.
      global_scales_ind: Indices into `image_scales` used for the global descriptor.
      max_feature_num: Most local features per image.
      max_image_size: Longest image side fed to the model (images are downsized to it).
      attention_threshold: Absolute attention threshold, or None before calibration.
      compute_dtype: "float32" or "bfloat16" (the network's compute dtype).
      calibration: How the threshold was chosen (None when not calibrated).
      model_config: The DelgModel config the export was built from.
      attention_wiring: "paper" or "pre_2021" (`delg_tf.models.attention_wiring`): where the
        keypoints' attention was computed. None in exports written before it was recorded
        (those are "pre_2021").
      global_pooling: SuperGlobal pooling options (`global_pooling.GlobalPooling` fields), or
        None for the official GeM + sum over scales.
      format_version: Version of this file.
    """

    backbone: str
    block3_strides: bool
    input_normalization: str
    global_dim: int
    local_dim: int
    receptive_field: dict[str, float]
    image_scales: list[float] = dataclasses.field(default_factory=lambda: [*DEFAULT_IMAGE_SCALES])
    global_scales_ind: list[int] = dataclasses.field(
        default_factory=lambda: [*DEFAULT_GLOBAL_SCALES_IND]
    )
    max_feature_num: int = DEFAULT_MAX_FEATURE_NUM
    max_image_size: int = DEFAULT_MAX_IMAGE_SIZE
    attention_threshold: float | None = None
    compute_dtype: str = "float32"
    calibration: dict[str, Any] | None = None
    model_config: dict[str, Any] | None = None
    attention_wiring: str | None = None
    global_pooling: dict[str, Any] | None = None
    format_version: int = FORMAT_VERSION

    def validate(self) -> None:
        """Raises ValueError naming the first inconsistent field."""
        if not self.image_scales or any(s <= 0 for s in self.image_scales):
            raise ValueError(f"image_scales must be positive and non-empty: {self.image_scales}")
        bad = [i for i in self.global_scales_ind if not 0 <= i < len(self.image_scales)]
        if bad or not self.global_scales_ind:
            raise ValueError(
                f"global_scales_ind {self.global_scales_ind} must index image_scales "
                f"(length {len(self.image_scales)})"
            )
        if self.attention_threshold is not None and not math.isfinite(self.attention_threshold):
            raise ValueError(f"attention_threshold must be finite: {self.attention_threshold}")
        if self.global_pooling is not None:
            GlobalPooling.from_dict(self.global_pooling)  # raises naming the bad option
        if self.max_feature_num < 0 or self.max_image_size <= 0:
            raise ValueError(
                f"max_feature_num {self.max_feature_num} / max_image_size "
                f"{self.max_image_size} out of range"
            )

    def to_json(self) -> str:
        # sort_keys/indent give one '"attention_threshold": <value>' line the graph can parse.
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str = "<string>") -> ExportSettings:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"{source}: not valid JSON ({e})") from e
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{source}: unknown settings keys {unknown}")
        if data.get("format_version", FORMAT_VERSION) > FORMAT_VERSION:
            raise ValueError(f"{source}: format_version {data['format_version']} is too new")
        try:
            settings = cls(**data)
        except TypeError as e:
            raise ValueError(f"{source}: {e}") from e
        settings.validate()
        return settings


def settings_path(export_path: str) -> str:
    """Path of the settings asset inside a SavedModel directory."""
    return os.path.join(export_path, "assets", SETTINGS_FILENAME)


def read_settings(export_path: str) -> ExportSettings:
    """Reads the settings asset of an export.

    Raises:
      FileNotFoundError: naming the missing file (not a delg-tf export).
      ValueError: for a malformed file.
    """
    path = settings_path(export_path)
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(
            f"{path} not found: {export_path} is not a delg-export SavedModel (pass the export "
            "directory, or give the extraction settings by flags)"
        )
    with tf.io.gfile.GFile(path, "r") as f:
        return ExportSettings.from_json(f.read(), source=path)


def write_settings_file(path: str, settings: ExportSettings) -> None:
    """Writes settings atomically (a reader never sees a half-written file)."""
    settings.validate()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write_text_atomically(path, settings.to_json())


def set_attention_threshold(
    export_path: str, threshold: float, calibration: dict[str, Any] | None = None
) -> ExportSettings:
    """Records a (calibrated) attention threshold in an export's settings asset."""
    settings = read_settings(export_path)
    settings.attention_threshold = float(threshold)
    settings.calibration = calibration
    write_settings_file(settings_path(export_path), settings)
    return settings


_THRESHOLD_PATTERN = r'[\s\S]*"attention_threshold"\s*:\s*([-+0-9.eE]+|null)[\s\S]*'


def threshold_from_settings_text(text: tf.Tensor) -> tf.Tensor:
    """In-graph parse of `attention_threshold` from the settings JSON.

    Args:
      text: string scalar, the settings file's content.

    Returns:
      float32 scalar. Fails with a message naming the remedy when the threshold was never set.
    """
    value = tf.strings.regex_replace(text, _THRESHOLD_PATTERN, r"\1")
    ok = tf.strings.regex_full_match(value, r"[-+0-9.eE]+")
    with tf.control_dependencies(
        [
            tf.debugging.Assert(
                ok,
                [
                    "attention_threshold is not set in the export's "
                    f"assets/{SETTINGS_FILENAME}; run delg-calibrate-threshold, "
                    "or use serving_default with input_abs_thres"
                ],
            )
        ]
    ):
        return tf.strings.to_number(value, tf.float32)
