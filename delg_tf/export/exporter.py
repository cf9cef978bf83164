"""Checkpoint -> SavedModel: builds the extraction module and saves it atomically."""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from collections.abc import Sequence

import tensorflow as tf

from delg_tf.export.checkpoint_loading import load_model_from_checkpoint
from delg_tf.export.export_settings import (
    DEFAULT_GLOBAL_SCALES_IND,
    DEFAULT_IMAGE_SCALES,
    DEFAULT_MAX_FEATURE_NUM,
    DEFAULT_MAX_IMAGE_SIZE,
    SETTINGS_FILENAME,
    ExportSettings,
    write_settings_file,
)
from delg_tf.export.extraction_module import DelgExtractionModule
from delg_tf.export.global_pooling import GlobalPooling
from delg_tf.models import DelgModel


def settings_for_model(
    model: DelgModel,
    model_config: dict | None = None,
    compute_dtype: str = "float32",
    image_scales: Sequence[float] = DEFAULT_IMAGE_SCALES,
    global_scales_ind: Sequence[int] = DEFAULT_GLOBAL_SCALES_IND,
    max_feature_num: int = DEFAULT_MAX_FEATURE_NUM,
    max_image_size: int = DEFAULT_MAX_IMAGE_SIZE,
    attention_threshold: float | None = None,
    global_pooling: GlobalPooling | None = None,
) -> ExportSettings:
    """The settings asset describing `model` (receptive field from its layer graph).

    `global_pooling` (SuperGlobal GeM+ / regional GeM / Scale-GeM) is recorded only when given
    and different from the official pooling, so a default export's settings are unchanged.
    """
    field = model.receptive_field
    settings = ExportSettings(
        backbone=model.model_config.backbone,
        block3_strides=model.model_config.block3_strides,
        input_normalization=model.input_normalization,
        global_dim=model.model_config.embedding_dim,
        local_dim=model.model_config.autoencoder_dim
        if model.model_config.use_autoencoder
        else int(model.backbone.output["local"].shape[-1]),
        receptive_field={"size": field.size, "stride": field.stride, "padding": field.padding},
        image_scales=[float(s) for s in image_scales],
        global_scales_ind=[int(i) for i in global_scales_ind],
        max_feature_num=int(max_feature_num),
        max_image_size=int(max_image_size),
        attention_threshold=None if attention_threshold is None else float(attention_threshold),
        compute_dtype=compute_dtype,
        model_config=model_config,
        attention_wiring=model.attention_wiring,
        global_pooling=None
        if global_pooling is None or global_pooling == GlobalPooling()
        else dataclasses.asdict(global_pooling),
    )
    settings.validate()
    return settings


def save_module(model: DelgModel, settings: ExportSettings, export_path: str) -> None:
    """Saves the extraction module for `model` to `export_path`, which must not exist.

    The SavedModel is written next to `export_path` and renamed into place, so the directory
    appears only when complete.

    Raises:
      FileExistsError: if `export_path` exists (as the official exporter, never overwrite).
    """
    export_path = os.path.abspath(export_path)
    if os.path.exists(export_path):
        raise FileExistsError(f"--export_path {export_path} already exists; refusing to overwrite")
    parent = os.path.dirname(export_path)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(export_path)}.tmp-", dir=parent)
    try:
        settings_dir = os.path.join(staging, "settings")
        settings_file = os.path.join(settings_dir, SETTINGS_FILENAME)
        write_settings_file(settings_file, settings)
        module = DelgExtractionModule(model, settings, settings_file)
        saved = os.path.join(staging, "saved_model")
        tf.saved_model.save(module, saved, signatures=module.signatures())
        os.rename(saved, export_path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def export_from_checkpoint(
    ckpt_path: str, export_path: str, compute_dtype: str = "float32", **settings_kwargs
) -> ExportSettings:
    """`delg-export`: restores a training checkpoint and writes the SavedModel.

    Args:
      ckpt_path: Checkpoint prefix or training logdir.
      export_path: New SavedModel directory.
      compute_dtype: "float32" or "bfloat16".
      **settings_kwargs: `settings_for_model` options (scales, max_feature_num, ...).

    Returns:
      The settings written into the export.
    """
    model, config, prefix = load_model_from_checkpoint(ckpt_path, compute_dtype)
    settings = settings_for_model(model, config, compute_dtype, **settings_kwargs)
    settings.model_config = {**config, "checkpoint": prefix}
    save_module(model, settings, export_path)
    return settings
