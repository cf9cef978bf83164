"""The training/evaluation pipeline over any TFDS image-classification dataset.

Same parse and batch stages as `reader.build_dataset` (same crop, normalization, seeding and
output `(images, labels)`), with TFDS doing the file handling. Images are read still encoded
(`tfds.decode.SkipDecoding`) so the shuffle buffer holds compressed bytes, and decoded with
`channels=3` so grayscale (MNIST) and RGBA datasets yield RGB. The dataset must already be
prepared in `data_dir` (`tfds build <name> --data_dir=...`); this module never downloads.
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_datasets as tfds

from delg_tf.data import decoder, example_schema, parser, reader


def to_rgb(image: tf.Tensor) -> tf.Tensor:
    """Converts a decoded `[H, W, C]` image with C in {1, 3, 4} to uint8 RGB `[H, W, 3]`.

    Raises:
      ValueError: if the channel count is statically unknown or not 1, 3 or 4, or the dtype is
        not uint8.
    """
    if image.dtype != tf.uint8:
        raise ValueError(f"Expected uint8 images, got {image.dtype.name}.")
    channels = image.shape[-1]
    if channels == 1:
        return tf.image.grayscale_to_rgb(image)
    if channels == 3:
        return image
    if channels == 4:
        return image[..., :3]
    raise ValueError(f"Expected 1, 3 or 4 image channels, got shape {image.shape}.")


def build_tfds_dataset(
    name: str,
    parse: parser.Parser,
    *,
    data_dir: str | None,
    split: str,
    global_batch_size: int,
    image_key: str = "image",
    label_key: str | None = "label",
    input_context: tf.distribute.InputContext | None = None,
    seed: int | None = None,
    shuffle_buffer_size: int = reader.DEFAULT_SHUFFLE_BUFFER_SIZE,
    repeat: bool | None = None,
    deterministic: bool = False,
) -> tf.data.Dataset:
    """Builds `(images, labels)` batches from a prepared TFDS dataset.

    Args:
      name: TFDS name, optionally with config/version (e.g. `"cifar10"`, `"mnist:3.*.*"`).
      data_dir: TFDS data directory (None: the TFDS default).
      split: TFDS split expression, e.g. `"train"` or `"train[:90%]"`.
      parse, global_batch_size, input_context, seed, shuffle_buffer_size, repeat,
        deterministic: as in `reader.build_dataset`. With `input_context`, TFDS shards the
        split's files across input pipelines (it needs at least as many files as pipelines).
      image_key: feature holding the image.
      label_key: feature holding the integer class; None for unlabelled data (labels -1).

    Returns:
      Dataset of `(images, labels)`: float32 `[B, S, S, 3]` and int32 `[B]`.

    Raises:
      ValueError: if an option is invalid or `image_key` / `label_key` is not a feature of the
        dataset (the message lists the features).
    """
    reader.check_shuffle_buffer_size(shuffle_buffer_size)
    batch_size = reader.batch_size_for(global_batch_size, input_context)
    is_training = parse.is_training
    repeat = is_training if repeat is None else repeat
    seeds = reader.pipeline_seeds(seed, input_context)

    builder = tfds.builder(name, data_dir=data_dir)
    features = builder.info.features
    for flag, key in (("image_key", image_key), ("label_key", label_key)):
        if key is not None and key not in features:
            raise ValueError(
                f"{flag}={key!r} is not a feature of TFDS dataset {name!r}; "
                f"features: {sorted(features.keys())}."
            )
    encoded = isinstance(features[image_key], tfds.features.Image)
    decoders = {image_key: tfds.decode.SkipDecoding()} if encoded else None
    read_config = tfds.ReadConfig(
        input_context=input_context, shuffle_seed=seeds.files, try_autocache=False
    )
    ds = builder.as_dataset(
        split=split, shuffle_files=is_training, decoders=decoders, read_config=read_config
    )

    def decode(example):
        image = example[image_key]
        if encoded:
            image = tf.io.decode_image(image, channels=3, expand_animations=False)
        else:
            image = to_rgb(image)
        label = (
            tf.cast(example[label_key], tf.int32)
            if label_key is not None
            else tf.constant(example_schema.NO_LABEL, tf.int32)
        )
        return {
            decoder.IMAGE: tf.ensure_shape(image, [None, None, 3]),
            decoder.LABEL: label,
            decoder.ID: tf.constant(""),  # only the TFRecord reader reports record ids
        }

    return reader.records_to_batches(
        ds,
        lambda numbered: numbered.map(
            lambda index, example: (index, decode(example)),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=deterministic,
        ),
        parse,
        batch_size=batch_size,
        repeat=repeat,
        shuffle_buffer_size=shuffle_buffer_size,
        seeds=seeds,
        deterministic=deterministic,
        input_context=input_context,
    )
