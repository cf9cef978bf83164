"""The exported tf.Module: the official DELG signature plus named convenience signatures.

Signatures (all take one uint8 [H, W, 3] image, no batch dimension):

- `serving_default` (official `export_local_and_global_model.py` names and dtypes): inputs
  `input_image`, `input_scales` float32 [S], `input_max_feature_num` int32, `input_abs_thres`
  float32, `input_global_scales_ind` int32 [G]; outputs `boxes` [N, 4] (y-x receptive-field boxes
  in input-image pixels), `features` [N, d] raw, `scales` [N] (1 / scale), `scores` [N, 1]
  (attention), `global_descriptors` [G, D] raw.
- `extract_global`: `input_image` -> `global_descriptor` [D] (default global scales, per-scale
  L2, sum (or max with Scale-GeM), L2).
- `extract_local`: `input_image` -> `locations` [N, 2] (y, x), `descriptors` [N, d] (L2),
  `scales` [N], `attention` [N] (default scales, the calibrated threshold, top max_feature_num).
- `extract_attention_map`: `input_image`, `input_scale` -> `attention` [h, w] and the `boxes`
  [h * w, 4] of its cells in input-image pixels (for visualisation).
"""

from __future__ import annotations

import tensorflow as tf

from delg_tf.data.preprocessing import normalize_image
from delg_tf.export.export_settings import ExportSettings, threshold_from_settings_text
from delg_tf.export.global_pooling import GlobalPooling, pooled_global_descriptor
from delg_tf.export.multiscale import PyramidFeatures, extract_pyramid, scaled_size
from delg_tf.export.postprocessing import (
    aggregate_global_descriptors,
    keypoint_locations,
    normalize_local_descriptors,
)
from delg_tf.export.receptive_boxes import receptive_boxes
from delg_tf.models import DelgModel
from delg_tf.models.receptive_field import ReceptiveField

IMAGE_SPEC = tf.TensorSpec([None, None, 3], tf.uint8, name="input_image")
OFFICIAL_INPUT_SPECS = (
    IMAGE_SPEC,
    tf.TensorSpec([None], tf.float32, name="input_scales"),
    tf.TensorSpec([], tf.int32, name="input_max_feature_num"),
    tf.TensorSpec([], tf.float32, name="input_abs_thres"),
    tf.TensorSpec([None], tf.int32, name="input_global_scales_ind"),
)


class DelgExtractionModule(tf.Module):
    """Wraps a DelgModel for export.

    Args:
      model: The trained model (float32 outputs; any compute dtype).
      settings: Export settings (scales, dims, receptive field, ...).
      settings_file: Path of the written settings JSON; saved as an asset of the module.
    """

    def __init__(self, model: DelgModel, settings: ExportSettings, settings_file: str):
        super().__init__(name="delg_extraction")
        self.model = model
        self.settings_asset = tf.saved_model.Asset(settings_file)
        self._normalization = settings.input_normalization
        self._field = ReceptiveField(**settings.receptive_field)
        self._local_dim = settings.local_dim
        self._global_dim = settings.global_dim
        self._scales = tf.constant(settings.image_scales, tf.float32)
        self._global_scales = tf.constant(
            [settings.image_scales[i] for i in settings.global_scales_ind], tf.float32
        )
        self._max_feature_num = int(settings.max_feature_num)
        self._global_pooling = GlobalPooling.from_dict(settings.global_pooling)

    def _model_fn(self, images: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        # Not `model.call`: with the paper wiring the decoder and the attention classifier
        # only serve training, so the extraction graph leaves them out.
        out = self.model.extraction_outputs(images, training=False)
        return self._global_descriptor(out), out["attention"], out["local_descriptors"]

    def _global_descriptor(self, out: dict[str, tf.Tensor]) -> tf.Tensor:
        """[1, D] raw global descriptor: the trained head's, or SuperGlobal-pooled conv5."""
        if not self._global_pooling.changes_pooling:
            return out["global_descriptor"]
        return pooled_global_descriptor(out["conv5"], self.model.global_head, self._global_pooling)

    def _pyramid(self, image, scales, global_scales_ind, abs_thres, max_feature_num):
        return extract_pyramid(
            normalize_image(image, self._normalization),
            scales,
            global_scales_ind,
            abs_thres,
            max_feature_num,
            model_fn=self._model_fn,
            field=self._field,
            local_dim=self._local_dim,
            global_dim=self._global_dim,
        )

    @tf.function(input_signature=OFFICIAL_INPUT_SPECS)
    def extract_features(
        self,
        input_image,
        input_scales,
        input_max_feature_num,
        input_abs_thres,
        input_global_scales_ind,
    ):
        """The official DELG serving signature (see module docstring)."""
        f: PyramidFeatures = self._pyramid(
            input_image, input_scales, input_global_scales_ind, input_abs_thres,
            input_max_feature_num,
        )  # fmt: skip
        return {
            "boxes": tf.identity(f.boxes, name="boxes"),
            "features": tf.identity(f.features, name="features"),
            "scales": tf.identity(f.scales, name="scales"),
            "scores": tf.identity(f.scores[:, tf.newaxis], name="scores"),
            "global_descriptors": tf.identity(f.global_descriptors, name="global_descriptors"),
        }

    @tf.function(input_signature=[IMAGE_SPEC])
    def extract_global(self, input_image):
        """One unit-norm global descriptor over the default global scales."""
        num = tf.size(self._global_scales)
        # Threshold +inf and max 0: the network runs once per global scale, no local selection.
        f = self._pyramid(
            input_image, self._global_scales, tf.range(num), tf.constant(float("inf")),
            tf.constant(0),
        )  # fmt: skip
        aggregation = self._global_pooling.scale_aggregation
        return {
            "global_descriptor": aggregate_global_descriptors(f.global_descriptors, aggregation)
        }

    @tf.function(input_signature=[IMAGE_SPEC])
    def extract_local(self, input_image):
        """Keypoints and unit-norm descriptors at the default scales and calibrated threshold."""
        threshold = threshold_from_settings_text(tf.io.read_file(self.settings_asset.asset_path))
        f = self._pyramid(
            input_image, self._scales, tf.zeros([0], tf.int32), threshold,
            tf.constant(self._max_feature_num),
        )  # fmt: skip
        return {
            "locations": keypoint_locations(f.boxes),
            "descriptors": normalize_local_descriptors(f.features),
            "scales": f.scales,
            "attention": f.scores,
        }

    @tf.function(input_signature=[IMAGE_SPEC, tf.TensorSpec([], tf.float32, name="input_scale")])
    def extract_attention_map(self, input_image, input_scale):
        """The full attention map at one scale, with its cells' boxes in input-image pixels."""
        image = normalize_image(input_image, self._normalization)[tf.newaxis]
        size = scaled_size(tf.shape(input_image)[:2], input_scale)
        _, attention, _ = self._model_fn(tf.image.resize(image, size, method="bilinear"))
        attention = attention[0, :, :, 0]
        boxes = receptive_boxes(tf.shape(attention)[0], tf.shape(attention)[1], self._field)
        return {"attention": attention, "boxes": boxes / input_scale}

    def signatures(self) -> dict[str, tf.types.experimental.ConcreteFunction]:
        """The signatures to save, `serving_default` first."""
        return {
            "serving_default": self.extract_features.get_concrete_function(),
            "extract_global": self.extract_global.get_concrete_function(),
            "extract_local": self.extract_local.get_concrete_function(),
            "extract_attention_map": self.extract_attention_map.get_concrete_function(),
        }
