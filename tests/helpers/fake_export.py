"""An export whose "network" has known structure: attention = brightness of 8x8 cells."""

import tensorflow as tf

from delg_tf.export.export_settings import ExportSettings
from delg_tf.export.exporter import save_module


class BrightnessModel(tf.Module):
    """Attention = 2 + mean of the normalised red channel over each 8x8 cell (1 for white).

    Receptive field (8, 8, 0): cell (i, j) sees pixels [8i, 8i + 7] x [8j, 8j + 7].
    Local descriptors = (brightness, 1); global = per-channel image mean + `global_offset` (another
    offset is another graph: another export with the same settings).
    """

    def __init__(self, global_offset: float = 2.0):
        super().__init__()
        self.global_offset = global_offset

    def __call__(self, images, training=False):
        pooled = tf.nn.avg_pool2d(images[..., :1], 8, 8, "VALID")
        return {
            "global_descriptor": tf.reduce_mean(images, axis=[1, 2]) + self.global_offset,
            "attention": pooled + 2.0,
            "local_descriptors": tf.concat([pooled, tf.ones_like(pooled)], axis=-1),
        }

    def extraction_outputs(self, images, training=False):
        # What the export calls on a DelgModel (the forward pass without training-only parts).
        return self(images, training=training)


def export_brightness_model(
    path: str, threshold: float | None = 2.99, global_offset: float = 2.0, **kw
) -> ExportSettings:
    settings = ExportSettings(
        backbone="brightness",
        block3_strides=True,
        input_normalization="delf",
        global_dim=3,
        local_dim=2,
        receptive_field={"size": 8, "stride": 8, "padding": 0},
        image_scales=kw.pop("image_scales", [0.5, 1.0, 2.0]),
        global_scales_ind=kw.pop("global_scales_ind", [0, 1]),
        attention_threshold=threshold,
        **kw,
    )
    save_module(BrightnessModel(global_offset), settings, path)
    return settings
