"""DELG local head: autoencoder, attention, attention pooling and attention classifier."""

from __future__ import annotations

import keras
import tensorflow as tf

from delg_tf.models.attention import Attention
from delg_tf.models.attention_wiring import PAPER, PRE_2021, check_attention_wiring
from delg_tf.models.autoencoder import Autoencoder
from delg_tf.models.precision import at_least_float32, head_dtype


def attention_pool(features: tf.Tensor, attention: tf.Tensor) -> tf.Tensor:
    """Attention-weighted mean of L2-normalized features (official `AttentionModel` feat).

    Args:
        features: [B, h, w, C] the pooled map: the reconstruction S' (paper wiring) or S.
        attention: [B, h, w, 1] softplus attention scores.

    Returns:
        [B, C] float32 `mean_{h,w}(l2n(features) * attention)`.
    """
    normalized = tf.math.l2_normalize(at_least_float32(features), axis=-1)
    return tf.reduce_mean(normalized * tf.cast(attention, normalized.dtype), axis=[1, 2])


@keras.saving.register_keras_serializable(package="delg_tf")
class LocalHead(keras.layers.Layer):
    """Local branch of DELG on the (stop-gradient) conv4 map S.

    With the autoencoder: descriptors = 1x1 conv C -> d (linear), S' = ReLU(1x1 conv d -> C).
    The `"paper"` wiring computes the attention on S and pools `mean(l2n(S') * a)` into a
    linear classifier; `"pre_2021"` computes it on S' and pools over l2n(S) (see
    `delg_tf.models.attention_wiring`). Without the autoencoder: descriptors = S, attention
    on S, pooling over S, whatever the wiring.

    Args:
        num_classes: Classes of the attention classifier.
        feature_dim: C, channels of S.
        use_autoencoder: Use the autoencoder (official default).
        autoencoder_dim: d.
        attention_filters: Hidden channels of the attention module.
        synchronized_bn: Cross-replica BatchNorm in the attention module.
        attention_wiring: `"paper"` or `"pre_2021"`.

    Call args:
        features: [B, h, w, C] S.
        training: BatchNorm mode.

    Returns:
        Dict: `local_descriptors` [B, h, w, d] (or C), `attention` [B, h, w, 1] (softplus),
        `attention_logits` [B, N] float32, and `reconstruction` [B, h, w, C] with the
        autoencoder.
    """

    def __init__(
        self,
        num_classes: int,
        feature_dim: int,
        use_autoencoder: bool = True,
        autoencoder_dim: int = 128,
        attention_filters: int = 512,
        synchronized_bn: bool = False,
        attention_wiring: str = PAPER,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.attention_wiring = check_attention_wiring(attention_wiring)
        self.num_classes = int(num_classes)
        self.feature_dim = int(feature_dim)
        self.use_autoencoder = bool(use_autoencoder)
        self.autoencoder_dim = int(autoencoder_dim)
        self.attention_filters = int(attention_filters)
        self.synchronized_bn = bool(synchronized_bn)
        self.autoencoder = None
        if self.use_autoencoder:
            self.autoencoder = Autoencoder(
                self.autoencoder_dim, self.feature_dim, dtype=self.dtype_policy, name="autoencoder"
            )
        self.attention = Attention(
            self.attention_filters, synchronized_bn, dtype=self.dtype_policy, name="attention"
        )
        # Logits in float32 (cheap: [B, C] x [C, N]).
        self.classifier = keras.layers.Dense(self.num_classes, dtype=head_dtype(), name="att_fc")

    def build(self, input_shape):
        if self.autoencoder is not None:
            self.autoencoder.build(input_shape)
        self.attention.build(input_shape)
        self.classifier.build((input_shape[0], self.feature_dim))

    @property
    def attention_on_reconstruction(self) -> bool:
        """Whether the attention needs the decoder (only the pre-2021 autoencoder wiring)."""
        return self.autoencoder is not None and self.attention_wiring == PRE_2021

    def call(self, features, training=None):
        outputs = {}
        attention_input = pooled = features
        if self.autoencoder is not None:
            descriptors, reconstruction = self.autoencoder(features)
            outputs["reconstruction"] = reconstruction
            if self.attention_on_reconstruction:
                attention_input = reconstruction
            else:
                pooled = reconstruction
        else:
            descriptors = features
        attention, _ = self.attention(attention_input, training=training)
        outputs["local_descriptors"] = descriptors
        outputs["attention"] = attention
        outputs["attention_logits"] = self.classifier(attention_pool(pooled, attention))
        return outputs

    def keypoint_outputs(self, features, training=None):
        """What extraction needs, without the parts only training uses.

        With the paper wiring this skips the decoder, the pooling and the classifier (the
        attention comes from S and the descriptors from the encoder alone).

        Args:
            features: [B, h, w, C] S.
            training: BatchNorm mode.

        Returns:
            Dict: `local_descriptors` [B, h, w, d] (or C), `attention` [B, h, w, 1], equal
            to the same keys of `call`.
        """
        if self.autoencoder is None:
            descriptors, attention_input = features, features
        elif self.attention_on_reconstruction:
            descriptors, attention_input = self.autoencoder(features)
        else:
            descriptors, attention_input = self.autoencoder.encode(features), features
        attention, _ = self.attention(attention_input, training=training)
        return {"local_descriptors": descriptors, "attention": attention}

    def get_config(self):
        config = super().get_config()
        config.update(
            num_classes=self.num_classes,
            feature_dim=self.feature_dim,
            use_autoencoder=self.use_autoencoder,
            autoencoder_dim=self.autoencoder_dim,
            attention_filters=self.attention_filters,
            synchronized_bn=self.synchronized_bn,
            attention_wiring=self.attention_wiring,
        )
        return config
