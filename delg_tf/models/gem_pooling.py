"""Generalized-mean (GeM) pooling over the spatial axes."""

from __future__ import annotations

import keras
import tensorflow as tf

from delg_tf.models.precision import head_dtype


@keras.saving.register_keras_serializable(package="delg_tf")
class GeMPooling(keras.layers.Layer):
    """GeM pooling: `mean_{h,w}(max(x, eps)^p)^(1/p)` over axes 1 and 2.

    p = 3 is fixed by default, as in the official DELG (a learned p tends to drift to 1 with
    ArcFace + whitening). With `trainable_power=True` p is a variable kept in
    `[min_power, max_power]` (a constraint after each update and a clip in the forward pass).
    The computation runs in float32 (this layer's default dtype; float64 under a float64
    policy) and divides by the spatial maximum first, so large p does not overflow; the value
    is unchanged, since GeM is positively homogeneous.

    Args:
        power: Initial / fixed exponent p.
        trainable_power: Learn p.
        eps: Clamp for the activations (1e-6 as the official code).
        min_power: Lower bound of a trainable p.
        max_power: Upper bound of a trainable p.

    Call args:
        inputs: [B, H, W, C] feature map.

    Returns:
        [B, C] pooled features.
    """

    def __init__(
        self,
        power: float = 3.0,
        trainable_power: bool = False,
        eps: float = 1e-6,
        min_power: float = 1.0,
        max_power: float = 10.0,
        **kwargs,
    ):
        kwargs.setdefault("dtype", head_dtype())
        super().__init__(**kwargs)
        if not power > 0:
            raise ValueError(f"GeM power must be positive, got {power}.")
        if trainable_power and not min_power <= power <= max_power:
            raise ValueError(f"GeM power {power} is outside [{min_power}, {max_power}].")
        self.power = float(power)
        self.trainable_power = bool(trainable_power)
        self.eps = float(eps)
        self.min_power = float(min_power)
        self.max_power = float(max_power)
        self.p = None

    def build(self, input_shape):
        if self.trainable_power:
            low, high = self.min_power, self.max_power
            self.p = self.add_weight(
                name="power",
                shape=(),
                initializer=keras.initializers.Constant(self.power),
                constraint=lambda v: tf.clip_by_value(v, low, high),
                trainable=True,
            )

    def call(self, inputs):
        dtype = self.compute_dtype
        x = tf.maximum(tf.cast(inputs, dtype), self.eps)
        if self.p is None:
            p = tf.constant(self.power, dtype)
        else:
            p = tf.clip_by_value(tf.cast(self.p, dtype), self.min_power, self.max_power)
        scale = tf.stop_gradient(tf.reduce_max(x, axis=[1, 2], keepdims=True))
        pooled = tf.reduce_mean(tf.pow(x / scale, p), axis=[1, 2])
        return tf.pow(pooled, 1.0 / p) * tf.squeeze(scale, axis=[1, 2])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(
            power=self.power,
            trainable_power=self.trainable_power,
            eps=self.eps,
            min_power=self.min_power,
            max_power=self.max_power,
        )
        return config
