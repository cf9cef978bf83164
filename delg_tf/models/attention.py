"""DELF/DELG attention module: per-location keypoint scores."""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="delg_tf")
class Attention(keras.layers.Layer):
    """1x1 conv (filters) + BatchNorm + ReLU + 1x1 conv (1) + softplus.

    The official convs also declare an l2(1e-4) kernel regularizer that its training loop never
    adds to the loss; none is declared here, which is the same effective model.

    Args:
        filters: Hidden channels (512 officially).
        synchronized_bn: Cross-replica BatchNorm statistics.

    Call args:
        features: [B, h, w, C] S (or the reconstruction S' in the pre-2021 wiring).
        training: BatchNorm mode.

    Returns:
        Tuple `(scores [B, h, w, 1] softplus >= 0, logits [B, h, w, 1] before softplus)`.
    """

    def __init__(self, filters: int = 512, synchronized_bn: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.synchronized_bn = bool(synchronized_bn)
        self.conv1 = keras.layers.Conv2D(
            self.filters, 1, dtype=self.dtype_policy, name="attn_conv1"
        )
        self.bn = keras.layers.BatchNormalization(
            axis=-1, synchronized=self.synchronized_bn, dtype=self.dtype_policy, name="bn_conv1"
        )
        self.conv2 = keras.layers.Conv2D(1, 1, dtype=self.dtype_policy, name="attn_conv2")

    def build(self, input_shape):
        self.conv1.build(input_shape)
        hidden = (*input_shape[:-1], self.filters)
        self.bn.build(hidden)
        self.conv2.build(hidden)

    def call(self, features, training=None):
        x = tf.nn.relu(self.bn(self.conv1(features), training=training))
        logits = self.conv2(x)
        return tf.nn.softplus(logits), logits

    def compute_output_shape(self, input_shape):
        shape = (*input_shape[:-1], 1)
        return shape, shape

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, synchronized_bn=self.synchronized_bn)
        return config
