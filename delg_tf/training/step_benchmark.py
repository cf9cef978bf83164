"""Training throughput: the whole loop against a bare forward+backward step of the same model.

`measure_training_throughput` builds a `Trainer` (input pipeline, strategy, losses, summaries'
host values: everything a real step does), times single-step loop calls, and then times a bare
`tf.function` step of the same model and optimizer on one fixed in-memory batch (no input
pipeline, no strategy, no all-reduce, no metrics). Both are medians after warm-up, measured in
the same process, so the ratio is the loop's overhead. The benchmark tool calls it; nothing here
asserts a speed.
"""

from __future__ import annotations

import os
import statistics
import time

import numpy as np
import tensorflow as tf

from delg_tf.data import example_schema
from delg_tf.training.config import TrainConfig
from delg_tf.training.trainer import Trainer


def write_synthetic_records(
    directory: str, *, count: int, side: int, num_classes: int, seed: int = 0
) -> str:
    """Writes `count` random JPEG records of `side` x `side` to one shard; returns its pattern."""
    os.makedirs(directory, exist_ok=True)
    rng = np.random.default_rng(seed)
    path = os.path.join(directory, "train-00000-of-00001")
    with tf.io.TFRecordWriter(path) as writer:
        for i in range(count):
            image = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
            jpeg = tf.io.encode_jpeg(image, quality=90).numpy()
            example = example_schema.make_example(f"{i}", jpeg, side, side, i % num_classes)
            writer.write(example.SerializeToString())
    return os.path.join(directory, "train-*")


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure_training_throughput(
    config: TrainConfig,
    *,
    steps: int = 3,
    warmup: int = 1,
    forward_gflop_per_image: float | None = None,
    peak_gflops: float | None = None,
) -> dict[str, float]:
    """Times the training loop and a bare step of the same model.

    Args:
      config: a training config (its logdir receives the run's files).
      steps: timed steps per measurement (median reported).
      warmup: untimed steps first (the first one traces).
      forward_gflop_per_image: forward FLOPs per image, to report GFLOP/s (training is taken as
        3x forward, environment.md §3), e.g. 42.12 for R50 DELG at 512 px.
      peak_gflops: the machine's matmul rate, to report the fraction reached.

    Returns:
      `loop_step_seconds`, `bare_step_seconds`, their images/s, `loop_overhead` (loop / bare -
      1), and `gflops` / `fraction_of_peak` when the FLOPs are given.
    """
    trainer = Trainer(config)
    per_replica = trainer.per_replica_batch
    images = tf.random.uniform([per_replica, config.image_size, config.image_size, 3], -1.0, 1.0)
    labels = tf.range(per_replica, dtype=tf.int32) % config.num_classes
    variables = trainer.model.trainable_variables

    @tf.function
    def bare_step():
        _, grads, _, _, _ = trainer._forward_backward_fn(images, labels)
        trainer.optimizer.apply(grads, variables)
        return grads[0]

    def run_bare():
        with trainer.strategy.scope():
            result = trainer.strategy.run(bare_step)
        trainer.strategy.experimental_local_results(result)[0].numpy()

    def run_loop():
        trainer.run_chunk(1)

    for _ in range(warmup):
        run_loop()
        run_bare()
    # Alternate the two so both see the same machine load (other jobs share these CPUs).
    loop_times, bare_times = [], []
    for _ in range(steps):
        loop_times.append(_timed(run_loop))
        bare_times.append(_timed(run_bare))
    loop_seconds = statistics.median(loop_times)
    bare_seconds = statistics.median(bare_times)
    batch = config.batch_size
    result = {
        "loop_step_seconds": loop_seconds,
        "bare_step_seconds": bare_seconds,
        "loop_images_per_second": batch / loop_seconds,
        "bare_images_per_second": per_replica / bare_seconds,
        "loop_overhead": (loop_seconds * per_replica) / (bare_seconds * batch) - 1.0,
        "loop_step_times": loop_times,
        "bare_step_times": bare_times,
    }
    if forward_gflop_per_image:
        result["gflops"] = 3.0 * forward_gflop_per_image * batch / loop_seconds
        if peak_gflops:
            result["fraction_of_peak"] = result["gflops"] / peak_gflops
    return result
