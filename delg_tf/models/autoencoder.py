"""DELG autoencoder: reduces conv4 features to the local descriptor and reconstructs them."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="delg_tf")
class Autoencoder(keras.layers.Layer):
    """1x1 conv C -> d (linear: the local descriptor), then 1x1 conv d -> C with ReLU.

    Args:
        reduced_dim: d, the local descriptor size (128 officially).
        expanded_dim: C, the channel count of the input map (1024 for ResNet conv4).

    Call args:
        features: [B, h, w, C].

    Returns:
        Tuple `(reduced [B, h, w, d], reconstruction [B, h, w, C])`.
    """

    def __init__(self, reduced_dim: int = 128, expanded_dim: int = 1024, **kwargs):
        super().__init__(**kwargs)
        self.reduced_dim = int(reduced_dim)
        self.expanded_dim = int(expanded_dim)
        self.reduce = keras.layers.Conv2D(
            self.reduced_dim, 1, dtype=self.dtype_policy, name="autoenc_conv1"
        )
        self.expand = keras.layers.Conv2D(
            self.expanded_dim, 1, activation="relu", dtype=self.dtype_policy, name="autoenc_conv2"
        )

    def build(self, input_shape):
        if input_shape[-1] != self.expanded_dim:
            raise ValueError(
                f"Autoencoder expects {self.expanded_dim} input channels, got {input_shape[-1]}."
            )
        self.reduce.build(input_shape)
        self.expand.build((*input_shape[:-1], self.reduced_dim))

    def call(self, features):
        reduced = self.reduce(features)
        return reduced, self.expand(reduced)

    def encode(self, features):
        """The local descriptor alone, [B, h, w, d] (no decoder: what extraction needs)."""
        return self.reduce(features)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.reduced_dim), (*input_shape[:-1], self.expanded_dim)

    def get_config(self):
        config = super().get_config()
        config.update(reduced_dim=self.reduced_dim, expanded_dim=self.expanded_dim)
        return config
