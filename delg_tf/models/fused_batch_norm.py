"""BatchNormalization on TensorFlow's fused kernel, a drop-in for keras.layers.BatchNormalization.

Keras 3's TF backend normalizes with `tf.nn.moments` + `tf.nn.batch_normalization` and
differentiates through them: about ten elementwise and reduction ops forward and more backward
per layer. tf.keras (Keras 2) used the single `FusedBatchNormV3` kernel and its fused gradient
(`FusedBatchNormGradV3`). The layer here runs that kernel and keeps everything else of the Keras
layer: the same variables, names, config and moving-statistics update, so keras.applications
weights and existing checkpoints load unchanged and the numbers agree to float32 rounding.
"""

from __future__ import annotations

import keras
import tensorflow as tf

# x dtypes FusedBatchNormV3 takes on CPU and GPU (scale, offset and statistics stay float32).
_FUSED_DTYPES = ("float32", "bfloat16", "float16")


@keras.saving.register_keras_serializable(package="delg_tf", name="FusedBatchNormalization")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """keras.layers.BatchNormalization computed with `FusedBatchNormV3` where it applies.

    The fused kernel is used for 4-D NHWC inputs (axis -1 or 3) in float32, bfloat16 or float16
    without a mask, renorm or `synchronized=True`; anything else falls back to the parent's
    path, so cross-replica statistics stay exact under a distribution strategy.

    In training (`training=True` and the layer trainable) the kernel normalizes by the biased
    batch variance, as Keras 3 does, but returns the Bessel-corrected variance n/(n-1) * var; the
    moving variance is updated with the biased one (the correction undone), as Keras 3 updates
    it: `moving = moving * momentum + batch * (1 - momentum)`. Otherwise the moving statistics
    normalize. Variables, config and the call signature are the parent's.

    Input: [B, H, W, C] (any dtype the parent accepts). Output: same shape, the layer's compute
    dtype.
    """

    def _uses_fused_kernel(self, inputs, mask) -> bool:
        return (
            mask is None
            and not self.synchronized
            and not self.renorm
            and len(inputs.shape) == 4
            and self.axis in (-1, 3)
            and keras.backend.standardize_dtype(inputs.dtype) in _FUSED_DTYPES
        )

    def call(self, inputs, training=None, mask=None):
        if not self._uses_fused_kernel(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        channels = inputs.shape[-1]
        gamma = self.gamma if self.scale else tf.ones([channels], tf.float32)
        beta = self.beta if self.center else tf.zeros([channels], tf.float32)
        gamma = tf.cast(gamma, tf.float32)
        beta = tf.cast(beta, tf.float32)
        if training and self.trainable:
            outputs, mean, corrected_variance = tf.compat.v1.nn.fused_batch_norm(
                inputs, gamma, beta, epsilon=self.epsilon, data_format="NHWC", is_training=True
            )
            # n values per channel; the kernel's variance is sum((x - mean)^2) / max(n - 1, 1).
            shape = tf.shape(inputs)
            n = tf.cast(shape[0] * shape[1] * shape[2], tf.float32)
            variance = corrected_variance * (tf.maximum(n - 1.0, 1.0) / n)
            momentum = self.momentum
            self.moving_mean.assign(self.moving_mean * momentum + mean * (1.0 - momentum))
            self.moving_variance.assign(
                self.moving_variance * momentum + variance * (1.0 - momentum)
            )
        else:
            outputs, _, _ = tf.compat.v1.nn.fused_batch_norm(
                inputs,
                gamma,
                beta,
                mean=tf.cast(self.moving_mean, tf.float32),
                variance=tf.cast(self.moving_variance, tf.float32),
                epsilon=self.epsilon,
                data_format="NHWC",
                is_training=False,
            )
        return tf.cast(outputs, self.compute_dtype)


# Keras 3 `.weights.h5` and `.keras` files address each layer of a model by its snake-cased
# class name ("batch_normalization_3"), not by its layer name: under its own class name no
# keras.applications weights file would load. Keras' config uses the registered name above.
FusedBatchNormalization.__name__ = "BatchNormalization"
FusedBatchNormalization.__qualname__ = "BatchNormalization"


def with_fused_batch_norm(model: keras.Model) -> keras.Model:
    """A copy of a functional model whose BatchNormalization layers are fused ones.

    Every other layer is rebuilt from its config; layer names, variable names and order are
    unchanged and the weights (including the moving statistics) are copied.

    Args:
        model: A functional Keras model.

    Returns:
        The new functional model, same name, inputs and outputs.
    """

    def clone(layer):
        if type(layer) is keras.layers.BatchNormalization:
            return FusedBatchNormalization.from_config(layer.get_config())
        return layer.__class__.from_config(layer.get_config())

    fused = keras.models.clone_model(model, clone_function=clone)
    fused.set_weights(model.get_weights())
    return fused
