"""The DELG model: one forward pass for training, validation and export."""

from __future__ import annotations

import dataclasses

import keras
import tensorflow as tf

from delg_tf.models.arcface import ArcFace
from delg_tf.models.attention_wiring import CONFIG_KEY, PAPER, attention_wiring_of
from delg_tf.models.backbones import get_backbone
from delg_tf.models.global_head import GlobalHead
from delg_tf.models.local_head import LocalHead
from delg_tf.models.model_config import ModelConfig, field_names
from delg_tf.models.precision import at_least_float32
from delg_tf.models.receptive_field import ReceptiveField


@keras.saving.register_keras_serializable(package="delg_tf")
class DelgModel(keras.Model):
    """DELG: backbone, global head (GeM + whitening), ArcFace classifier and local head.

    `model(images, training=...)` takes already-normalized float images [B, H, W, 3] (see
    `input_normalization`) and returns a dict of float32 tensors:

    - `global_descriptor` [B, D]: whitened GeM of conv5, not L2-normalized.
    - `attention` [B, h, w, 1]: softplus attention scores (on S with the default wiring).
    - `attention_logits` [B, N]: attention classifier logits.
    - `local_descriptors` [B, h, w, d]: autoencoder bottleneck (conv4 itself without it).
    - `reconstruction` [B, h, w, C4]: autoencoder output S' (only with the autoencoder).
    - `local_features` [B, h, w, C4]: S, the stop-gradient conv4 map at the local stride.
    - `conv5` [B, H/32, W/32, C5]: the map the global head pooled.

    (h, w) = ceil(H / local_stride), ceil(W / local_stride) for the Keras ResNets.
    ArcFace logits need labels for the margin: `global_logits(global_descriptor, labels,
    training)`.

    The stop-gradient between the backbone and the local head is the single one in `call`:
    the attention and reconstruction losses never reach the backbone, and the ArcFace loss
    never reaches the local head (it does not depend on it), as in the official DELG.

    Mixed precision: set the global Keras dtype policy (e.g. `mixed_bfloat16`) before
    building; the body runs in that compute dtype, while GeM, ArcFace, the attention pooling
    and classifier run in float32, and every output is cast to float32. (Under a float64
    policy everything is float64.)

    Args:
        num_classes: Training classes N.
        backbone: Registry name (`delg_tf.models.backbones.BACKBONES`).
        backbone_weights: None, `"imagenet"` or a local Keras weights file for the backbone.
        block3_strides: Local features at stride 32 (official default) instead of 16.
        gem_power: GeM p.
        gem_trainable: Learn p.
        embedding_dim: Global descriptor size D.
        arcface_scale: ArcFace s.
        arcface_margin: ArcFace m.
        arcface_scale_trainable: Learn s.
        use_autoencoder: Use the autoencoder.
        autoencoder_dim: Local descriptor size d.
        attention_filters: Hidden channels of the attention module.
        synchronized_bn: Cross-replica BatchNorm everywhere (multi-replica = single replica).
        attention_wiring: `"paper"` (attention on S, pooling over the reconstruction; the
            paper and the official code since 2021) or `"pre_2021"` (attention on the
            reconstruction, pooling over S); see `delg_tf.models.attention_wiring`.
            `from_config` reads a config without this key as `"pre_2021"`.
        **kwargs: keras.Model arguments (name, ...).

    Attributes:
        model_config: The arguments above as one `delg_tf.models.model_config.ModelConfig`
            (`get_config()` is it plus the Keras keys, with `backbone_weights` None).
    """

    def __init__(
        self,
        num_classes: int,
        backbone: str = "resnet50",
        backbone_weights: str | None = None,
        block3_strides: bool = True,
        gem_power: float = 3.0,
        gem_trainable: bool = False,
        embedding_dim: int = 2048,
        arcface_scale: float = 45.25,
        arcface_margin: float = 0.1,
        arcface_scale_trainable: bool = False,
        use_autoencoder: bool = True,
        autoencoder_dim: int = 128,
        attention_filters: int = 512,
        synchronized_bn: bool = False,
        attention_wiring: str = PAPER,
        **kwargs,
    ):
        kwargs.setdefault("name", "delg")
        super().__init__(**kwargs)
        arguments = locals()
        # Every argument but **kwargs is a ModelConfig field (a test checks that the two lists
        # match), so the record is built from them without naming each one again.
        self.model_config = c = ModelConfig(**{name: arguments[name] for name in field_names()})
        if c.num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}.")

        self.backbone = get_backbone(
            c.backbone,
            weights=c.backbone_weights,
            block3_strides=c.block3_strides,
            synchronized_bn=c.synchronized_bn,
        )
        self.global_head = GlobalHead(
            c.embedding_dim, c.gem_power, c.gem_trainable, name="global_head"
        )
        self.arcface = ArcFace(
            c.num_classes,
            scale=c.arcface_scale,
            margin=c.arcface_margin,
            scale_trainable=c.arcface_scale_trainable,
            name="arcface",
        )
        self.local_head = LocalHead(
            c.num_classes,
            feature_dim=self.backbone.output["local"].shape[-1],
            use_autoencoder=c.use_autoencoder,
            autoencoder_dim=c.autoencoder_dim,
            attention_filters=c.attention_filters,
            synchronized_bn=c.synchronized_bn,
            attention_wiring=c.attention_wiring,
            name="local_head",
        )

    @property
    def num_classes(self) -> int:
        """Training classes N."""
        return self.model_config.num_classes

    @property
    def attention_wiring(self) -> str:
        """`"paper"` or `"pre_2021"` (see `delg_tf.models.attention_wiring`)."""
        return self.local_head.attention_wiring

    @property
    def input_normalization(self) -> str:
        """The `normalize_image` mode the backbone expects ("caffe" or "delf")."""
        return self.backbone.input_normalization

    @property
    def min_input_size(self) -> int:
        """Smallest image side the backbone accepts."""
        return self.backbone.min_input_size

    @property
    def local_stride(self) -> int:
        """Stride in pixels of the local map (32 with block3_strides, else 16)."""
        return self.backbone.local_stride

    @property
    def receptive_field(self) -> ReceptiveField:
        """Receptive field (size, stride, padding) of the local map, from the layer graph."""
        return self.backbone.local_receptive_field

    def build(self, input_shape):
        """Builds every sub-layer from shapes alone, e.g. `build((None, None, None, 3))`."""
        shapes = self.backbone.compute_output_shape(input_shape)
        self.global_head.build(shapes["conv5"])
        self.arcface.build((input_shape[0], self.model_config.embedding_dim))
        self.local_head.build(shapes["local"])
        self.built = True

    def call(self, images, training=None):
        features = self.backbone(images, training=training)
        # The one stop-gradient of DELG (paper Sec. 3; official delf_model.py): the local
        # head learns on a frozen copy of conv4, so its losses never update the backbone.
        local_features = tf.stop_gradient(features["local"])
        local = self.local_head(local_features, training=training)
        outputs = {
            "global_descriptor": self.global_head(features["conv5"]),
            "attention": local["attention"],
            "attention_logits": local["attention_logits"],
            "local_descriptors": local["local_descriptors"],
            "local_features": local_features,
            "conv5": features["conv5"],
        }
        if "reconstruction" in local:
            outputs["reconstruction"] = local["reconstruction"]
        return {key: at_least_float32(value) for key, value in outputs.items()}

    def extraction_outputs(self, images, training=False):
        """The outputs extraction uses, without what only training needs.

        Runs the backbone, the global head, the encoder and the attention, but (with the paper
        wiring) not the decoder, the attention pooling or the classifier. Values equal the
        same keys of `call`.

        Args:
            images: [B, H, W, 3] normalized float images.
            training: BatchNorm mode.

        Returns:
            Dict of float32 `global_descriptor` [B, D], `attention` [B, h, w, 1],
            `local_descriptors` [B, h, w, d], and `conv5` [B, H', W', C] (for the export's
            optional SuperGlobal pooling; unused outputs are pruned from the graph).
        """
        features = self.backbone(images, training=training)
        # No stop-gradient here: nothing is differentiated at extraction (see `call`).
        local = self.local_head.keypoint_outputs(features["local"], training=training)
        outputs = {
            "global_descriptor": self.global_head(features["conv5"]),
            "conv5": features["conv5"],
            **local,
        }
        return {key: at_least_float32(value) for key, value in outputs.items()}

    def global_logits(self, global_descriptor, labels=None, training=None):
        """ArcFace logits [B, N] float32 (margin only with labels and training=True).

        Args:
            global_descriptor: [B, D] `call` output.
            labels: [B] integer labels or None.
            training: Apply the margin.
        """
        return self.arcface(global_descriptor, labels=labels, training=training)

    def get_config(self):
        config = super().get_config()
        # Weights travel with the saved model; never re-load the original file.
        config.update(dataclasses.asdict(self.model_config), backbone_weights=None)
        return config

    @classmethod
    def from_config(cls, config):
        # A config saved before the wiring was recorded describes the pre-2021 wiring.
        config = {**config, CONFIG_KEY: attention_wiring_of(config)}
        return super().from_config(config)
