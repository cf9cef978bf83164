"""What a run reports, and when it is written: the console line, TensorBoard and metrics.jsonl.

Each report covers the steps since the previous one: mean losses and gradient norm, accuracies,
the last step's learning rate, and throughput. The first loop call is left out of the
throughput (it includes tracing); the ETA uses the latest measured rate.
"""

from __future__ import annotations

import math

from absl import logging

from delg_tf.data import preprocessing
from delg_tf.training import summaries
from delg_tf.training.config import TrainConfig
from delg_tf.training.train_step import SCALARS, ChunkResult

# Step scalars reported as their mean over the report window.
_AVERAGED = ("total", "global_ce", "attention_ce", "reconstruction_mse", "grad_norm")


def window_metrics(
    sums: dict[str, float], steps: int, last: dict[str, float], batch_size: int
) -> dict[str, float]:
    """Reported metrics from the step scalars summed over `steps` steps, and the last step's."""
    metrics = {name: sums[name] / steps for name in _AVERAGED}
    metrics["global_accuracy"] = sums["global_correct"] / (steps * batch_size)
    metrics["attention_accuracy"] = sums["attention_correct"] / (steps * batch_size)
    metrics["learning_rate"] = last["learning_rate"]
    return metrics


class ProgressReport:
    """Accumulates loop results and writes reports (files on the chief only).

    Use as a context manager; it closes the TensorBoard writer on exit.

    Args:
      config: the run's settings (logdir, batch size, max_iters).
      chief: whether this process writes files.
      normalization: the model's input normalization, to show the batch images.
    """

    def __init__(self, config: TrainConfig, chief: bool, normalization: str):
        self._config = config
        self._normalization = normalization
        self._log = summaries.RunLog(config.logdir, chief)
        self._first_chunk = True
        self._eta_rate: float | None = None
        self._reset_window()

    def __enter__(self) -> ProgressReport:
        return self

    def __exit__(self, *exc) -> None:
        self._log.close()

    def _reset_window(self) -> None:
        self._sums = {name: 0.0 for name in SCALARS}
        self._steps = 0
        self._timed_steps, self._timed_seconds = 0, 0.0

    def add(self, chunk: ChunkResult) -> None:
        """Counts a loop call's steps into the current report window."""
        for name in SCALARS:
            self._sums[name] += chunk.sums[name]
        self._steps += chunk.steps
        if not self._first_chunk:  # the first call includes tracing
            self._timed_steps += chunk.steps
            self._timed_seconds += chunk.seconds
        self._first_chunk = False

    def report(self, step: int, chunk: ChunkResult) -> dict[str, float]:
        """Writes the window's metrics and `chunk`'s attention, starts a new window.

        Returns:
          The metrics written (also `steps_per_second` and `images_per_second`).
        """
        config = self._config
        metrics = window_metrics(self._sums, self._steps, chunk.last, config.batch_size)
        timed_seconds = self._timed_seconds
        steps_per_second = self._timed_steps / timed_seconds if timed_seconds else math.nan
        if timed_seconds:
            self._eta_rate = steps_per_second
        metrics["steps_per_second"] = steps_per_second
        metrics["images_per_second"] = steps_per_second * config.batch_size
        eta = (config.max_iters - step) / self._eta_rate if self._eta_rate else math.nan
        logging.info(
            summaries.report_line(
                step, config.max_iters, metrics, metrics["images_per_second"], eta
            )
        )
        self._log.scalars(step, metrics)
        images = preprocessing.denormalize_image(chunk.images, self._normalization).numpy()
        self._log.attention(step, chunk.attention, images)
        self._log.record({"step": step, **metrics})
        self._reset_window()
        return metrics

    def report_validation(self, step: int, validation: dict[str, float]) -> None:
        """Writes validation accuracies to the console, TensorBoard and metrics.jsonl."""
        logging.info(
            "step %d validation: global accuracy %.4f, attention accuracy %.4f (%d examples)",
            step,
            validation["global_accuracy"],
            validation["attention_accuracy"],
            validation["examples"],
        )
        self._log.scalars(step, validation, prefix="validation")
        self._log.record({"step": step, "validation": validation})

    def flush(self) -> None:
        self._log.flush()
