"""TensorBoard summaries, the console report line and the metrics log of a training run.

Only the chief writes: other workers get a no-op TensorBoard writer and no metrics file (their
values are the same all-reduced numbers). Attention statistics are computed with numpy, so no
tensorflow-probability is needed (the official code used `tfp.stats.percentile`).

`tf.summary.scalar` / `tf.summary.image` live in the `tensorboard` package, which the
tensorflow-cpu wheel does not install. The summaries are therefore written with TF's own
`tf.summary.write` and the metadata TensorBoard's scalar and image plugins expect, so the event
files read the same in TensorBoard without making tensorboard a dependency.

`metrics.jsonl` goes through `tf.io.gfile` like every other logdir file, so a `gs://` logdir
works. Appending is not portable across gfile's filesystems (object stores have no append), so
the log keeps the file's text in memory and replaces the file atomically at each report: a crash
leaves the previous complete file, and a report costs one write of the whole file (about 350
bytes per report: ~2 MB after 500k steps reported every 100).
"""

from __future__ import annotations

import json
import math
import os

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import summary_pb2

from delg_tf.common.atomic_files import write_gfile_text_atomically

SUMMARY_DIR = "train_logs"  # the official train.py's writer directory
METRICS_FILE = "metrics.jsonl"

# TensorBoard tags of the per-step scalars, keyed by the names the training step returns. The
# loss tags are the official ones (`research/delf/delf/python/training/train.py`).
SCALAR_TAGS = {
    "total": "loss/total",
    "global_ce": "loss/desc/crossentropy",
    "attention_ce": "loss/attn/crossentropy",
    "reconstruction_mse": "loss/recon/mse",
    "global_accuracy": "train_accuracy/desc",
    "attention_accuracy": "train_accuracy/attn",
    "learning_rate": "learning_rate",
    "grad_norm": "grad_norm",
}


def _metadata(plugin_name: str, data_class: int) -> summary_pb2.SummaryMetadata:
    return summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=plugin_name),
        data_class=data_class,
    )


def write_scalar(tag: str, value: float, step: int) -> None:
    """A TensorBoard scalar (plugin "scalars") on the default writer."""
    tf.summary.write(
        tag,
        tf.constant(float(value), tf.float32),
        step=step,
        metadata=_metadata("scalars", summary_pb2.DATA_CLASS_SCALAR),
    )


def write_images(tag: str, images: np.ndarray, step: int) -> None:
    """TensorBoard images (plugin "images") from float `[K, H, W, C]` in [0, 1], C in {1, 3}.

    The tensor is `[width, height, png_1, ..., png_K]` as strings, the images plugin's format.
    """
    pixels = np.clip(np.round(np.asarray(images, np.float32) * 255.0), 0, 255).astype(np.uint8)
    height, width = pixels.shape[1:3]
    encoded = [tf.io.encode_png(image).numpy() for image in pixels]
    tensor = tf.constant([str(width).encode(), str(height).encode(), *encoded], tf.string)
    tf.summary.write(
        tag, tensor, step=step, metadata=_metadata("images", summary_pb2.DATA_CLASS_BLOB_SEQUENCE)
    )


def attention_statistics(attention: np.ndarray) -> dict[str, float]:
    """Min, max, mean and quartiles of attention scores.

    Args:
      attention: attention map of any shape, e.g. `[B, h, w, 1]`.

    Returns:
      `{"min", "max", "mean", "percent_25", "percent_50", "percent_75"}` as floats.
    """
    values = np.asarray(attention, np.float64).ravel()
    p25, p50, p75 = np.percentile(values, [25, 50, 75])
    return {
        "min": float(values.min()),
        "max": float(values.max()),
        "mean": float(values.mean()),
        "percent_25": float(p25),
        "percent_50": float(p50),
        "percent_75": float(p75),
    }


def attention_to_images(attention: np.ndarray) -> np.ndarray:
    """Scales each attention map to [0, 1] for display.

    Args:
      attention: `[K, h, w, 1]` attention scores (>= 0, softplus).

    Returns:
      float32 `[K, h, w, 1]` in [0, 1]; each map divided by its own maximum.
    """
    attention = np.asarray(attention, np.float32)
    peak = attention.reshape(attention.shape[0], -1).max(axis=1)
    peak = np.where(peak > 0, peak, 1.0)
    return attention / peak[:, None, None, None]


def read_complete_lines(path: str) -> str:
    """The text of `path` up to its last newline ("" if the file does not exist).

    A line without its newline was cut by a crash (of a writer that appended); it is dropped so
    the next line written does not join it.
    """
    if not tf.io.gfile.exists(path):
        return ""
    with tf.io.gfile.GFile(path, "r") as f:
        text = f.read()
    return text[: text.rfind("\n") + 1]


def format_duration(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def report_line(
    step: int,
    max_iters: int,
    metrics: dict[str, float],
    images_per_second: float,
    eta_seconds: float,
) -> str:
    """One console line: step, losses, accuracies, learning rate, images/s and ETA."""
    return (
        f"step {step}/{max_iters}"
        f" | loss {metrics['total']:.4f}"
        f" (global {metrics['global_ce']:.4f}, attention {metrics['attention_ce']:.4f},"
        f" recon {metrics['reconstruction_mse']:.4f})"
        f" | acc global {metrics['global_accuracy']:.3f} attention"
        f" {metrics['attention_accuracy']:.3f}"
        f" | lr {metrics['learning_rate']:.3g}"
        f" | {images_per_second:.2f} img/s | ETA {format_duration(eta_seconds)}"
    )


class RunLog:
    """Writes TensorBoard summaries and `metrics.jsonl` for one run (chief only).

    A resumed run keeps the lines of `metrics.jsonl` that earlier runs wrote and appends to them.

    Args:
      logdir: the run's logdir (local or any `tf.io.gfile` filesystem, e.g. `gs://`); summaries
        go to `<logdir>/train_logs`.
      chief: whether this process writes; otherwise every method is a no-op.
    """

    def __init__(self, logdir: str, chief: bool):
        self.chief = chief
        if chief:
            self._writer = tf.summary.create_file_writer(os.path.join(logdir, SUMMARY_DIR))
            self._metrics_path = os.path.join(logdir, METRICS_FILE)
            self._metrics_text = read_complete_lines(self._metrics_path)
        else:
            self._writer = tf.summary.create_noop_writer()
            self._metrics_path = None
            self._metrics_text = ""

    def scalars(self, step: int, values: dict[str, float], prefix: str = "") -> None:
        """Writes scalars; keys in `SCALAR_TAGS` use the official tags."""
        if not self.chief:
            return
        with self._writer.as_default():
            for key, value in values.items():
                tag = SCALAR_TAGS.get(key, key) if not prefix else f"{prefix}/{key}"
                write_scalar(tag, value, step)

    def attention(self, step: int, attention: np.ndarray, images: np.ndarray | None) -> None:
        """Attention statistics of `attention` `[B, h, w, 1]`, and maps of the first images.

        Args:
          step: global step.
          attention: `[B, h, w, 1]` attention scores of one training batch (one replica).
          images: `[K, S, S, 3]` RGB pixels in [0, 255] of the first K images, or None.
        """
        if not self.chief:
            return
        stats = attention_statistics(attention)
        with self._writer.as_default():
            for key, value in stats.items():
                write_scalar(f"attention/{key}", value, step)
            k = len(images) if images is not None else min(4, len(attention))
            write_images("batch_attention", attention_to_images(attention[:k]), step)
            if images is not None:
                write_images("batch_images", np.asarray(images, np.float32) / 255.0, step)

    def record(self, entry: dict) -> None:
        """Adds one JSON line to `<logdir>/metrics.jsonl`, rewriting the file atomically.

        On return the line is in the file, so a crash afterwards loses nothing.
        """
        if self._metrics_path is None:
            return
        self._metrics_text += json.dumps(entry, sort_keys=True) + "\n"
        write_gfile_text_atomically(self._metrics_path, self._metrics_text)

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()
