"""Per-step seconds of one Trainer, shared by the model and training parts and built once."""

from __future__ import annotations

import os

from delg_tf.benchmark.settings import Settings


def training_pattern(s: Settings, work_dir: str) -> str:
    """The pipeline part's TFRecords under `work_dir`, written here if that part did not run."""
    from delg_tf.benchmark.pipeline_benchmark import write_benchmark_tfrecords

    directory = os.path.join(work_dir, "tfrecords")
    if os.path.isdir(directory) and os.listdir(directory):
        return os.path.join(directory, "bench-*")
    return write_benchmark_tfrecords(
        directory, s.pipeline_images, s.pipeline_jpeg_shape,
        num_classes=min(s.num_classes, s.demo_num_classes),
    )  # fmt: skip


def trainer_timings(
    s: Settings, work_dir: str, cache: dict, dtype: str, demo: bool = False
) -> dict[str, list[float]]:
    """Paired per-step seconds of one Trainer: "loop", "bare", "forward" and, for the R50 float32
    trainer, the bare keras "backbone" step, timed in turn. Each configuration is built once.

    Args:
      s: the run's sizes.
      work_dir: scratch directory (TFRecords, the trainer's logdir).
      cache: timings already measured in this run, keyed by (backbone or "demo", dtype);
        filled here.
      dtype: "float32" or "bfloat16" (mixed precision).
      demo: time the demo model instead of `s.backbone`.

    Returns:
      Step name -> seconds per step of each of `s.repeats` runs.
    """
    key = ("demo" if demo else s.backbone, dtype)
    if key in cache:
        return cache[key]
    from delg_tf.benchmark.timing import release_memory
    from delg_tf.benchmark.training_benchmark import (
        backbone_step,
        bare_step,
        forward_step,
        interleaved_seconds,
        loop_steps,
    )
    from delg_tf.training.config import TrainConfig
    from delg_tf.training.trainer import Trainer

    config = TrainConfig.from_flat(
        dict(
            logdir=os.path.join(work_dir, f"train_{key[0]}_{dtype}"),
            train_file_pattern=training_pattern(s, work_dir),
            num_classes=s.demo_num_classes if demo else s.num_classes,
            backbone=s.demo_backbone if demo else s.backbone,
            image_size=s.demo_image_size if demo else s.image_size,
            batch_size=s.demo_batch_size if demo else s.batch_size,
            **(
                {
                    "delg_embedding_layer_dim": s.demo_embedding_dim,
                    "autoencoder_dimensions": s.demo_autoencoder_dim,
                }
                if demo
                else {}
            ),
            mixed_precision=dtype == "bfloat16",
            summary_images=1,
        )
    )
    trainer = Trainer(config)
    steps = {
        "loop": loop_steps(trainer, s.steps_per_run),
        "bare": bare_step(trainer),
        "forward": forward_step(trainer),
    }
    if not demo and dtype == "float32":
        steps["backbone"] = backbone_step(s.backbone, s.image_size, s.batch_size, dtype)
    cache[key] = interleaved_seconds(steps, runs=s.repeats)
    del trainer, steps
    release_memory()
    return cache[key]
