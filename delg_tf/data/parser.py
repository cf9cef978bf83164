"""Turns a decoded image into a model input: crop, resize, flip, normalize.

The second stage of decode -> parse -> read. Training follows the official DELF/DELG pipeline
(`research/delf/delf/python/training/datasets/googlelandmarks.py`): an
Inception-style random crop from `sample_distorted_bounding_box`
(whole image as the box, min_object_covered 0.1, aspect [3/4, 4/3], area [0.08, 1], 100 attempts,
whole image as fallback), resized to `image_size` x `image_size` with `method="area"`, and no flip
unless asked.

Evaluation (and training with `augmentation=False`) deliberately differs from the official square
resize, which distorts the aspect ratio: the shorter side is resized to `image_size` and the
central square is cropped. Every image then has one shape, so batches need no padding (padding
would put zeros into GeM pooling) and objects keep the proportions they have at extraction time.

All randomness uses stateless ops driven by an explicit `[2]` seed, so a seeded pipeline is
reproducible element by element whatever the parallelism. `Parser` holds the options (size,
normalization, training, augmentation, flip) and is called on each decoded example.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from delg_tf.data import decoder, preprocessing

# Inception-style crop parameters of the official DELF/DELG training pipeline.
MIN_OBJECT_COVERED = 0.1
ASPECT_RATIO_RANGE = (3.0 / 4.0, 4.0 / 3.0)
AREA_RANGE = (0.08, 1.0)
MAX_ATTEMPTS = 100
RESIZE_METHOD = "area"


def sample_crop_window(image_shape: tf.Tensor, seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Samples the official Inception-style crop window.

    Args:
      image_shape: int `[3]`, `(height, width, channels)` of the image.
      seed: int32/int64 `[2]` stateless seed.

    Returns:
      `(offset, size)`, each int32 `[2]` in (y, x) / (height, width) order. Area is in
      [0.08, 1] of the image (in practice >= 0.1 because the whole image is the object box and
      min_object_covered is 0.1) and width/height in [3/4, 4/3], up to pixel rounding; after
      100 failed attempts the whole image.
    """
    whole_image = tf.constant([[[0.0, 0.0, 1.0, 1.0]]], tf.float32)
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.cast(image_shape, tf.int32),
        bounding_boxes=whole_image,
        seed=seed,
        min_object_covered=MIN_OBJECT_COVERED,
        aspect_ratio_range=ASPECT_RATIO_RANGE,
        area_range=AREA_RANGE,
        max_attempts=MAX_ATTEMPTS,
        use_image_if_no_bounding_boxes=True,
    )
    return begin[:2], size[:2]


def random_crop_and_resize(image: tf.Tensor, image_size: int, seed: tf.Tensor) -> tf.Tensor:
    """Inception-style random crop, then area resize to a square.

    Args:
      image: `[H, W, 3]`, uint8 or float in [0, 255].
      image_size: output side in pixels.
      seed: int `[2]` stateless seed.

    Returns:
      float32 `[image_size, image_size, 3]` in [0, 255].
    """
    offset, size = sample_crop_window(tf.shape(image), seed)
    crop = tf.slice(image, tf.concat([offset, [0]], 0), tf.concat([size, [-1]], 0))
    resized = tf.image.resize(crop, [image_size, image_size], method=RESIZE_METHOD)
    return tf.ensure_shape(resized, [image_size, image_size, 3])


def center_crop_and_resize(image: tf.Tensor, image_size: int) -> tf.Tensor:
    """Aspect-preserving evaluation resize: shorter side to `image_size`, central square crop.

    Args:
      image: `[H, W, 3]`, uint8 or float in [0, 255].
      image_size: output side in pixels.

    Returns:
      float32 `[image_size, image_size, 3]` in [0, 255].
    """
    resized = preprocessing.resize_shorter_side(image, image_size, method=RESIZE_METHOD)
    return preprocessing.central_crop(resized, image_size)


@dataclasses.dataclass(frozen=True)
class Parser:
    """The input options of one pipeline: how a decoded example becomes a model input.

    One object travels from the caller through the reader to each element, as the parser of
    tensorflow/models `official/vision/dataloaders/parser.py` does.

    Attributes:
      image_size: output side S in pixels.
      normalization: a `preprocessing.normalize_image` mode, `"caffe"` or `"delf"`.
      is_training: training applies the random crop (if `augmentation`) and flip (if
        `random_flip`), and the reader shuffles, repeats and drops the last partial batch;
        evaluation is the deterministic center crop.
      augmentation: the Inception-style random crop (training only). Off: the evaluation crop.
      random_flip: random horizontal flip (training only); off by default, as in the paper.

    Raises:
      ValueError: naming the option, if `image_size` is not a positive int or `normalization` is
        unknown.
    """

    image_size: int
    normalization: str
    is_training: bool
    augmentation: bool = True
    random_flip: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.image_size, (int, np.integer)) or self.image_size < 1:
            raise ValueError(f"image_size must be a positive int, got {self.image_size!r}.")
        if self.normalization not in preprocessing.NORMALIZATION_MODES:
            raise ValueError(
                f"normalization must be one of {preprocessing.NORMALIZATION_MODES}, "
                f"got {self.normalization!r}."
            )

    def parse_image(self, image: tf.Tensor, seed: tf.Tensor | None = None) -> tf.Tensor:
        """Crops, resizes, optionally flips and normalizes one image.

        Args:
          image: `[H, W, 3]`, uint8 or float RGB in [0, 255].
          seed: int `[2]` stateless seed; required when training with any randomness.

        Returns:
          float32 `[S, S, 3]`, normalized.

        Raises:
          ValueError: if training needs randomness and `seed` is None.
        """
        crop_randomly = self.is_training and self.augmentation
        flip = self.is_training and self.random_flip
        if (crop_randomly or flip) and seed is None:
            raise ValueError("Parser.parse_image needs a [2] `seed` for training randomness.")
        if crop_randomly or flip:
            crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, num=2))
        if crop_randomly:
            image = random_crop_and_resize(image, self.image_size, crop_seed)
        else:
            image = center_crop_and_resize(image, self.image_size)
        if flip:
            image = tf.image.stateless_random_flip_left_right(image, flip_seed)
        return preprocessing.normalize_image(image, self.normalization)

    def __call__(
        self, decoded: dict[str, tf.Tensor], seed: tf.Tensor | None = None
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """Parses a `decoder.decode` dict into the `(image, label)` model input.

        Args:
          decoded: dict with `image` (`[H, W, 3]`) and `label` (int scalar).
          seed: see `parse_image`.

        Returns:
          `(image, label)`: float32 `[S, S, 3]` and int32 scalar.
        """
        image = self.parse_image(decoded[decoder.IMAGE], seed)
        return image, tf.cast(decoded[decoder.LABEL], tf.int32)
