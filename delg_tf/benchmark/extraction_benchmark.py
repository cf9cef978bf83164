"""Extraction speed of an export, and how close the network runs to the machine's matmul rate.

`benchmark_extraction` times `SavedModelExtractor` (the real extraction path: the official
signature with all scales, selection and post-processing) on synthetic images already decoded
and resized, so the figure is the model's throughput; `network_gflops` counts the network's
arithmetic for the same pyramid with the TF profiler, so GFLOP/s = FLOPs x images/s.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Sequence

import numpy as np
import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import (
    convert_variables_to_constants_v2,
)

from delg_tf.export.checkpoint_loading import build_model
from delg_tf.export.exporter import save_module, settings_for_model
from delg_tf.export.multiscale import scaled_size
from delg_tf.extraction.extractor import ExtractionOptions, SavedModelExtractor, settings_if_any


def export_untrained(
    model_config: dict, export_path: str, compute_dtype: str = "float32"
) -> tf.keras.Model:
    """Exports a randomly initialised DelgModel (for speed figures; weights do not matter).

    Returns:
      The in-memory model (float32 compute), e.g. for `network_gflops`.
    """
    model = build_model(model_config, compute_dtype)
    save_module(model, settings_for_model(model, model_config, compute_dtype), export_path)
    return model


def matmul_gflops(size: int = 4096, dtype: tf.DType = tf.float32, runs: int = 5) -> float:
    """Median GFLOP/s of a [size, size] x [size, size] matmul in a tf.function."""
    a = tf.random.uniform([size, size], dtype=tf.float32)
    a = tf.cast(a, dtype)
    fn = tf.function(lambda x: tf.matmul(x, x))
    fn(a).numpy()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn(a).numpy()
        times.append(time.perf_counter() - start)
    return 2.0 * size**3 / statistics.median(times) / 1e9


def network_gflops(
    model: tf.keras.Model | tf.Module, image_shape: Sequence[int], scales: Sequence[float]
) -> float:
    """GFLOPs of one forward pass per pyramid level (the float ops TF's profiler counts).

    Args:
      model: A DelgModel (called as model(images, training=False)).
      image_shape: (H, W) of the image before the pyramid.
      scales: Pyramid scales.
    """
    total = 0.0
    for scale in scales:
        h, w = (int(v) for v in scaled_size(tf.constant(image_shape[:2]), scale).numpy())

        def forward(x):
            out = model(x, training=False)
            return out["global_descriptor"], out["attention"], out["local_descriptors"]

        fn = tf.function(forward)
        concrete = fn.get_concrete_function(tf.TensorSpec([1, h, w, 3], tf.float32))
        frozen = convert_variables_to_constants_v2(concrete)
        options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
        options["output"] = "none"
        stats = tf.compat.v1.profiler.profile(graph=frozen.graph, options=options)
        total += stats.total_float_ops
    return total / 1e9


def network_seconds(
    model: tf.keras.Model | tf.Module,
    image_shape: Sequence[int],
    scales: Sequence[float],
    runs: int = 3,
) -> float:
    """Median wall time of the bare network over the pyramid levels (no resize, no selection).

    Compared with `benchmark_extraction`, it shows what resizing, selection and post-processing
    add on top of the network.
    """
    sizes = [
        tuple(int(v) for v in scaled_size(tf.constant(image_shape[:2]), s).numpy()) for s in scales
    ]
    images = [tf.random.uniform([1, h, w, 3], -1.0, 1.0) for h, w in sizes]

    @tf.function(reduce_retracing=False)
    def forward(x):
        out = model(x, training=False)
        return out["global_descriptor"], out["attention"], out["local_descriptors"]

    for image in images:  # trace each size once
        [t.numpy() for t in forward(image)]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        for image in images:
            [t.numpy() for t in forward(image)]
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@dataclasses.dataclass
class ExtractionBenchmark:
    """Timing of one export.

    Attributes:
      seconds_per_image: Wall time per image of each timed run (after warm-up).
      image_shape: (H, W) of the synthetic images.
      gflops_per_image: Network arithmetic per image over the pyramid (None if not counted).
    """

    seconds_per_image: list[float]
    image_shape: tuple[int, int]
    gflops_per_image: float | None = None

    @property
    def images_per_second(self) -> float:
        return 1.0 / statistics.median(self.seconds_per_image)

    @property
    def gflops_per_second(self) -> float | None:
        if self.gflops_per_image is None:
            return None
        return self.gflops_per_image * self.images_per_second


def benchmark_extraction(
    model_path: str,
    image_shape: tuple[int, int] = (768, 1024),
    num_images: int = 5,
    warmup: int = 1,
    attention_threshold: float | None = None,
    gflops_per_image: float | None = None,
) -> ExtractionBenchmark:
    """Times full extraction (all scales, selection, post-processing) of synthetic images.

    Args:
      model_path: delg-export SavedModel (or an official model, with `attention_threshold`).
      image_shape: (H, W) of the model input (already resized).
      num_images: Timed images (median reported).
      warmup: Untimed first images (tracing, oneDNN kernel selection).
      attention_threshold: Override (an uncalibrated export needs one).
      gflops_per_image: Network arithmetic, for GFLOP/s (see `network_gflops`).
    """
    options = ExtractionOptions.from_settings(
        settings_if_any(model_path), attention_threshold=attention_threshold
    )
    extractor = SavedModelExtractor(model_path, options)
    rng = np.random.default_rng(0)
    factors = np.ones(2, np.float32)
    times = []
    for i in range(warmup + num_images):
        image = rng.integers(0, 256, [*image_shape, 3], dtype=np.uint8)
        start = time.perf_counter()
        extractor(image, factors)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return ExtractionBenchmark(times, tuple(image_shape), gflops_per_image)
