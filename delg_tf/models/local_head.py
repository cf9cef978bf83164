"""DELG local head: autoencoder, attention, attention pooling and attention classifier."""

from __future__ import annotations

import keras
import tensorflow as tf

from delg_tf.models.attention import Attention
from delg_tf.models.autoencoder import Autoencoder
from delg_tf.models.precision import at_least_float32, head_dtype


def attention_pool(features: tf.Tensor, attention: tf.Tensor) -> tf.Tensor:
    """Attention-weighted mean of L2-normalized features (official ``AttentionModel`` feat).

    Args:
        features: [B, h, w, C] local features S.
        attention: [B, h, w, 1] softplus attention scores.

    Returns:
        [B, C] float32 ``mean_{h,w}(l2n(S) * attention)``.
    """
    normalized = tf.math.l2_normalize(at_least_float32(features), axis=-1)
    return tf.reduce_mean(normalized * tf.cast(attention, normalized.dtype), axis=[1, 2])


@keras.saving.register_keras_serializable(package="delg_tf")
class LocalHead(keras.layers.Layer):
    """Local branch of DELG on the (stop-gradient) conv4 map S.

    With the autoencoder: descriptors = 1x1 conv C -> d (linear), S' = ReLU(1x1 conv d -> C),
    attention computed on S'. Without it: descriptors = S and attention is computed on S. In
    both cases the attention-weighted mean is taken over l2n(S) and fed to a linear classifier.

    Args:
        num_classes: Classes of the attention classifier.
        feature_dim: C, channels of S.
        use_autoencoder: Use the autoencoder (official default).
        autoencoder_dim: d.
        attention_filters: Hidden channels of the attention module.
        synchronized_bn: Cross-replica BatchNorm in the attention module.

    Call args:
        features: [B, h, w, C] S.
        training: BatchNorm mode.

    Returns:
        Dict: ``local_descriptors`` [B, h, w, d] (or C), ``attention`` [B, h, w, 1] (softplus),
        ``attention_logits`` [B, N] float32, and ``reconstruction`` [B, h, w, C] with the
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
        **kwargs,
    ):
        super().__init__(**kwargs)
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

    def call(self, features, training=None):
        outputs = {}
        attention_input = features
        if self.autoencoder is not None:
            descriptors, reconstruction = self.autoencoder(features)
            outputs["reconstruction"] = reconstruction
            attention_input = reconstruction
        else:
            descriptors = features
        attention, _ = self.attention(attention_input, training=training)
        outputs["local_descriptors"] = descriptors
        outputs["attention"] = attention
        outputs["attention_logits"] = self.classifier(attention_pool(features, attention))
        return outputs

    def get_config(self):
        config = super().get_config()
        config.update(
            num_classes=self.num_classes,
            feature_dim=self.feature_dim,
            use_autoencoder=self.use_autoencoder,
            autoencoder_dim=self.autoencoder_dim,
            attention_filters=self.attention_filters,
            synchronized_bn=self.synchronized_bn,
        )
        return config
