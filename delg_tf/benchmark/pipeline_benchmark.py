"""Throughput of the training input pipeline (read -> decode -> Inception crop -> resize -> batch).

`write_benchmark_tfrecords` writes labelled synthetic JPEGs in the official Example layout;
`benchmark_input_pipeline` times `reader.build_dataset` over them exactly as training builds it
(shuffles, parallel decode, augmentation), so the figure is what the pipeline can feed a model.
"""

from __future__ import annotations

import dataclasses
import os
import time
from statistics import median

import numpy as np
import tensorflow as tf

from delg_tf.data import example_schema, parser, reader


def _photo_like(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """[H, W, 3] uint8: smooth colour fields plus texture, so JPEGs are photo-sized (not noise)."""
    coarse = rng.uniform(0, 255, [1, 6, 8, 3]).astype(np.float32)
    smooth = tf.image.resize(coarse, [height, width], method="bicubic")[0].numpy()
    texture = rng.normal(0, 18, [height, width, 3]).astype(np.float32)
    return np.clip(smooth + texture, 0, 255).astype(np.uint8)


def write_benchmark_tfrecords(
    directory: str,
    num_images: int = 64,
    image_shape: tuple[int, int] = (600, 800),
    num_files: int = 4,
    num_classes: int = 10,
    seed: int = 0,
    jpeg_quality: int = 90,
) -> str:
    """Writes labelled synthetic JPEG records and returns their glob pattern.

    Args:
      directory: created if missing; files are `bench-00000-of-0000N`.
      num_images: records in total (a few distinct images, repeated: decoding cost is what
        matters, not content).
      image_shape: (H, W) of every JPEG; GLDv2 photos are about 800 px on the long side.
      num_files: TFRecord files (the reader interleaves files).
      num_classes: labels cycle over [0, num_classes).
      seed: content seed.
      jpeg_quality: JPEG quality (90, as the conversion tool writes).
    """
    if num_images < 1 or num_files < 1:
        raise ValueError(f"num_images ({num_images}) and num_files ({num_files}) must be >= 1")
    os.makedirs(directory, exist_ok=True)
    rng = np.random.default_rng(seed)
    height, width = image_shape
    distinct = [
        tf.io.encode_jpeg(_photo_like(rng, height, width), quality=jpeg_quality).numpy()
        for _ in range(min(num_images, 8))
    ]
    writers = [
        tf.io.TFRecordWriter(os.path.join(directory, f"bench-{i:05d}-of-{num_files:05d}"))
        for i in range(num_files)
    ]
    try:
        for i in range(num_images):
            example = example_schema.make_example(
                f"bench{i:08d}", distinct[i % len(distinct)], height, width, i % num_classes
            )
            writers[i % num_files].write(example.SerializeToString())
    finally:
        for writer in writers:
            writer.close()
    return os.path.join(directory, "bench-*")


@dataclasses.dataclass
class PipelineBenchmark:
    """Timed runs of the input pipeline.

    Attributes:
      seconds: wall time of each run.
      images_per_run: images pulled per run.
      image_size: side S of the [B, S, S, 3] batches.
      batch_size: B.
    """

    seconds: list[float]
    images_per_run: int
    image_size: int
    batch_size: int

    @property
    def images_per_second_runs(self) -> list[float]:
        return [self.images_per_run / s for s in self.seconds]

    @property
    def images_per_second(self) -> float:
        return median(self.images_per_second_runs)


def benchmark_input_pipeline(
    file_pattern: str,
    image_size: int = 512,
    batch_size: int = 32,
    batches_per_run: int = 8,
    runs: int = 3,
    warmup_batches: int = 4,
    normalization: str = "caffe",
    shuffle_buffer_size: int = 256,
    seed: int = 0,
) -> PipelineBenchmark:
    """Times batches pulled from the training pipeline (decode + Inception crop + resize).

    Args:
      file_pattern: TFRecords, e.g. from `write_benchmark_tfrecords`.
      image_size: training crop side S.
      batch_size: images per batch.
      batches_per_run: batches timed per run.
      runs: timed runs (median reported).
      warmup_batches: untimed batches first (fills the shuffle buffer, settles AUTOTUNE).
      normalization: "caffe" (ResNet with ImageNet weights) or "delf".
      shuffle_buffer_size: record shuffle buffer (small: the benchmark set is small).
      seed: pipeline seed.
    """
    dataset = reader.build_dataset(
        file_pattern,
        parser.Parser(image_size=image_size, normalization=normalization, is_training=True),
        global_batch_size=batch_size,
        seed=seed,
        shuffle_buffer_size=shuffle_buffer_size,
    )
    iterator = iter(dataset)
    for _ in range(warmup_batches):
        next(iterator)[0].numpy()
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(batches_per_run):
            images, _ = next(iterator)
            images.numpy()
        seconds.append(time.perf_counter() - start)
    return PipelineBenchmark(seconds, batches_per_run * batch_size, image_size, batch_size)
