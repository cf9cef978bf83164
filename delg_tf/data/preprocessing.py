"""Pixel normalization and aspect-preserving resizes shared by training, export and extraction.

`normalize_image` is the one place that turns pixels into model inputs. The training pipeline and
the SavedModel export both call it, so a model never sees one convention in training and another
in serving. The mode must match how the backbone was pretrained:

- `"caffe"`: keras.applications ResNet50/101 ImageNet weights. RGB -> BGR, subtract the ImageNet
  mean (B, G, R) = (103.939, 116.779, 123.68), no scaling; identical to
  `keras.applications.imagenet_utils.preprocess_input(x, mode="caffe")`.
- `"delf"`: (x - 128) / 128 on RGB, the official DELF/DELG convention
  (`research/delf/delf/python/training/datasets/googlelandmarks.py`), for backbones trained from
  scratch.
"""

from __future__ import annotations

import tensorflow as tf

CAFFE = "caffe"
DELF = "delf"
NORMALIZATION_MODES = (CAFFE, DELF)

# ImageNet channel means in BGR order, as keras.applications' "caffe" mode subtracts them.
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
DELF_CENTER = 128.0
DELF_SCALE = 128.0


def _check_mode(mode: str) -> None:
    if mode not in NORMALIZATION_MODES:
        raise ValueError(
            f"Unknown normalization mode {mode!r}; expected one of {NORMALIZATION_MODES}."
        )


def _check_rgb(image: tf.Tensor) -> None:
    channels = image.shape[-1] if image.shape.rank else None
    if channels is not None and channels != 3:
        raise ValueError(f"Expected RGB images with 3 channels last, got shape {image.shape}.")


def normalize_image(image: tf.Tensor, mode: str) -> tf.Tensor:
    """Turns RGB pixels in [0, 255] into the model's input convention.

    Args:
      image: uint8 or float RGB pixels in [0, 255], shape `[..., H, W, 3]` (any leading batch
        dims).
      mode: `"caffe"` (BGR, ImageNet mean subtracted, no scaling) or `"delf"` ((x - 128) / 128).

    Returns:
      float32 tensor of the same shape. For `"caffe"` the channels are in BGR order.

    Raises:
      ValueError: if `mode` is unknown or the last dimension is statically not 3.
    """
    _check_mode(mode)
    image = tf.convert_to_tensor(image)
    _check_rgb(image)
    image = tf.cast(image, tf.float32)
    if mode == CAFFE:
        return image[..., ::-1] - tf.constant(CAFFE_MEAN_BGR, tf.float32)
    return (image - DELF_CENTER) / DELF_SCALE


def denormalize_image(image: tf.Tensor, mode: str) -> tf.Tensor:
    """Inverts `normalize_image` (e.g. to show a training batch in TensorBoard).

    Args:
      image: float tensor `[..., H, W, 3]` as produced by `normalize_image(..., mode)`.
      mode: the mode that produced it.

    Returns:
      float32 RGB pixels `[..., H, W, 3]`, nominally in [0, 255] (not clipped).
    """
    _check_mode(mode)
    image = tf.cast(tf.convert_to_tensor(image), tf.float32)
    _check_rgb(image)
    if mode == CAFFE:
        return (image + tf.constant(CAFFE_MEAN_BGR, tf.float32))[..., ::-1]
    return image * DELF_SCALE + DELF_CENTER


def _spatial_size(image: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    shape = tf.shape(image)
    return shape[-3], shape[-2]


def resize_shorter_side(image: tf.Tensor, size: int, method: str = "area") -> tf.Tensor:
    """Resizes so the shorter side equals `size`, keeping the aspect ratio.

    The longer side becomes `round(longer * size / shorter)`.

    Args:
      image: `[H, W, C]` or `[B, H, W, C]`, any numeric dtype.
      size: target length of the shorter side, in pixels.
      method: a `tf.image.resize` method.

    Returns:
      float32 `[H', W', C]` (or batched) with `min(H', W') == size`.
    """
    height, width = _spatial_size(image)
    height_f = tf.cast(height, tf.float64)
    width_f = tf.cast(width, tf.float64)
    scale = tf.cast(size, tf.float64) / tf.minimum(height_f, width_f)
    new_height = tf.maximum(tf.cast(tf.round(height_f * scale), tf.int32), size)
    new_width = tf.maximum(tf.cast(tf.round(width_f * scale), tf.int32), size)
    # The shorter side is exact: round(short * size / short) == size, clamp guards float error.
    return tf.image.resize(image, tf.stack([new_height, new_width]), method=method)


def central_crop(image: tf.Tensor, size: int) -> tf.Tensor:
    """Crops the central `size` x `size` window.

    Args:
      image: `[H, W, C]` with `H >= size` and `W >= size`.
      size: side of the square crop.

    Returns:
      `[size, size, C]`, same dtype as `image`.
    """
    height, width = _spatial_size(image)
    top = (height - size) // 2
    left = (width - size) // 2
    crop = image[top : top + size, left : left + size, :]
    return tf.ensure_shape(crop, [size, size, image.shape[-1]])
