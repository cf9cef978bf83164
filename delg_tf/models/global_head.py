"""Global head: GeM pooling over conv5, then a fully connected whitening layer."""

from __future__ import annotations

import keras

from delg_tf.models.gem_pooling import GeMPooling


@keras.saving.register_keras_serializable(package="delg_tf")
class GlobalHead(keras.layers.Layer):
    """GeM over conv5 followed by `Dense(embedding_dim)` with bias (linear, Glorot init).

    The output is not L2-normalized: extraction normalizes it, and ArcFace normalizes its
    input (as the official code).

    Args:
        embedding_dim: Global descriptor size D (2048 officially).
        gem_power: GeM exponent p.
        gem_trainable: Learn p.

    Call args:
        conv5: [B, h, w, C5] feature map.

    Returns:
        [B, D] global descriptor in the layer's compute dtype.
    """

    def __init__(
        self,
        embedding_dim: int = 2048,
        gem_power: float = 3.0,
        gem_trainable: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.embedding_dim = int(embedding_dim)
        self.gem_power = float(gem_power)
        self.gem_trainable = bool(gem_trainable)
        self.pool = GeMPooling(power=gem_power, trainable_power=gem_trainable, name="gem")
        self.embedding = keras.layers.Dense(
            self.embedding_dim, dtype=self.dtype_policy, name="embedding_layer"
        )

    def build(self, input_shape):
        self.pool.build(input_shape)
        self.embedding.build((input_shape[0], input_shape[-1]))

    def call(self, conv5):
        return self.embedding(self.pool(conv5))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.embedding_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            embedding_dim=self.embedding_dim,
            gem_power=self.gem_power,
            gem_trainable=self.gem_trainable,
        )
        return config
