"""The input-pipeline figures: images/s, and its headroom over the training figures."""

from __future__ import annotations

import os

from delg_tf.benchmark.report import Report, figure
from delg_tf.benchmark.settings import Settings


def run_pipeline(s: Settings, report: Report, work_dir: str) -> str:
    """Writes benchmark TFRecords under `work_dir` and adds the pipeline's images/s.

    Returns:
      The TFRecord pattern (reused by the training part).
    """
    from delg_tf.benchmark.pipeline_benchmark import (
        benchmark_input_pipeline,
        write_benchmark_tfrecords,
    )

    pattern = write_benchmark_tfrecords(
        os.path.join(work_dir, "tfrecords"), s.pipeline_images, s.pipeline_jpeg_shape,
        num_classes=min(s.num_classes, s.demo_num_classes),
    )  # fmt: skip
    result = benchmark_input_pipeline(
        pattern, s.image_size, s.pipeline_batch_size, s.pipeline_batches, runs=s.repeats
    )
    h, w = s.pipeline_jpeg_shape
    report.add(
        figure("pipeline.images_per_second", result.images_per_second_runs, "images/s",
               f"{h}x{w} JPEG -> decode -> Inception crop -> {s.image_size} px -> batch "
               f"{s.pipeline_batch_size}")
    )  # fmt: skip
    return pattern


def add_pipeline_headroom(s: Settings, report: Report) -> None:
    """Pipeline images/s over the fastest R50 training images/s at the same size."""
    pipeline = report.get("pipeline.images_per_second")
    training = [
        report.get(f"training.{s.backbone}_{dtype}.images_per_second")
        for dtype in ("float32", "bfloat16")
    ]
    training = [t for t in training if t is not None]
    if pipeline is None or not training:
        return
    fastest = max(t.value for t in training)
    report.add(
        figure("pipeline.headroom_over_training", [r / fastest for r in pipeline.runs], "x",
               f"input images/s / fastest {s.backbone} training images/s at {s.image_size} px",
               ">=", 5)
    )  # fmt: skip
