"""ArcFace cosine classifier (additive angular margin), the DELG global loss head."""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from delg_tf.models.precision import head_dtype

# acos is evaluated on cosines clipped to [-1 + eps, 1 - eps]: its derivative is infinite at
# +-1 (the official code does not clip).
_ACOS_CLIP = 1e-7


def arcface_cosine_with_margin(cosine: tf.Tensor, labels: tf.Tensor, margin: float) -> tf.Tensor:
    """Applies the ArcFace margin to the true-class cosines.

    For the true class only, and only where `theta = acos(cos) <= pi - margin`, the cosine is
    replaced by `cos(theta + margin)`; every other entry is returned unchanged.

    Args:
        cosine: [B, N] float32 (or float64) cosines.
        labels: [B] integer class ids.
        margin: Additive angular margin m in radians.

    Returns:
        [B, N] float32 cosines, finite with finite gradients everywhere in [-1, 1].
    """
    clipped = tf.clip_by_value(cosine, -1.0 + _ACOS_CLIP, 1.0 - _ACOS_CLIP)
    theta = tf.acos(clipped)
    is_true = tf.one_hot(
        tf.cast(labels, tf.int32),
        tf.shape(cosine)[1],
        on_value=True,
        off_value=False,
        dtype=tf.bool,
    )
    apply = tf.logical_and(is_true, theta <= math.pi - margin)
    return tf.where(apply, tf.cos(theta + margin), cosine)


def inverse_column_norms(weights: tf.Tensor) -> tf.Tensor:
    """[D, N] -> [N] `1 / ||weights[:, c]||`, eps-safe like `tf.math.l2_normalize`.

    `rsqrt(max(sum of squares, 1e-12))`, so an all-zero column gives a finite 1e6, not inf.
    """
    square_sum = tf.reduce_sum(tf.square(weights), axis=0)
    return tf.math.rsqrt(tf.maximum(square_sum, tf.cast(1e-12, weights.dtype)))


@keras.saving.register_keras_serializable(package="delg_tf")
class ArcFace(keras.layers.Layer):
    """Cosine classifier with class weights normalized per class and an ArcFace margin.

    `logits = s * cos` with `cos = l2n(x) . l2n(W[:, c])`; with labels and
    `training=True` the margin is applied to the true class. Without labels or at
    validation the logits are plain scaled cosines. Computes in float32 (its default dtype).

    Args:
        num_classes: N.
        scale: s (45.25 = sqrt(2048) officially).
        margin: m in radians (0.1 officially).
        scale_trainable: Learn s (fixed officially).

    Call args:
        embeddings: [B, D] global descriptors (any float dtype; not normalized).
        labels: [B] integer labels or None.
        training: Apply the margin (only with labels).

    Returns:
        [B, N] float32 logits.
    """

    def __init__(
        self,
        num_classes: int,
        scale: float = 45.25,
        margin: float = 0.1,
        scale_trainable: bool = False,
        **kwargs,
    ):
        kwargs.setdefault("dtype", head_dtype())
        super().__init__(**kwargs)
        if not 0.0 <= margin < math.pi:
            raise ValueError(f"ArcFace margin must be in [0, pi), got {margin}.")
        self.num_classes = int(num_classes)
        self.scale = float(scale)
        self.margin = float(margin)
        self.scale_trainable = bool(scale_trainable)
        self.scale_variable = None

    def build(self, input_shape):
        self.kernel = self.add_weight(
            name="cosine_weights",
            shape=(input_shape[-1], self.num_classes),
            initializer="glorot_uniform",
        )
        if self.scale_trainable:
            self.scale_variable = self.add_weight(
                name="scale_factor",
                shape=(),
                initializer=keras.initializers.Constant(self.scale),
                trainable=True,
            )

    def cosine(self, embeddings: tf.Tensor) -> tf.Tensor:
        """[B, D] -> [B, N] float32 cosines between embeddings and class weights.

        Computed as `(l2n(x) @ W) * (1 / ||W[:, c]||)`: equal to `l2n(x) @ l2n(W)` but
        never materialises a normalised [D, N] copy of W (at N = 81313 that copy and its
        backward cost ~13% of a training step and GBs of transient memory). The inverse
        norms use the same eps as `tf.math.l2_normalize`.
        """
        x = tf.math.l2_normalize(tf.cast(embeddings, self.compute_dtype), axis=1)
        w = tf.cast(self.kernel, self.compute_dtype)
        return tf.matmul(x, w) * inverse_column_norms(w)

    def call(self, embeddings, labels=None, training=None):
        cosine = self.cosine(embeddings)
        if labels is not None and training and self.margin > 0.0:
            cosine = arcface_cosine_with_margin(cosine, labels, self.margin)
        scale = self.scale if self.scale_variable is None else self.scale_variable
        return cosine * tf.cast(scale, cosine.dtype)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_classes=self.num_classes,
            scale=self.scale,
            margin=self.margin,
            scale_trainable=self.scale_trainable,
        )
        return config
