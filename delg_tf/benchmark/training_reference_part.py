"""The tf-keras reference: the same-size ResNet50 step in Keras 2 beside ours, interleaved.

Each step runs in its own `step_worker` process (the tf-keras one with `TF_USE_LEGACY_KERAS=1`),
all alive at once; every repeat times one training step of each in turn, then one inference
pass of each, so run i of every step sees the same machine state and the ratios are paired.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile

from delg_tf.benchmark.report import Report, figure, paired_ratio
from delg_tf.benchmark.settings import Settings

MISSING_TF_KERAS = "tf-keras is not installed: pip install --no-deps 'tf-keras==2.21.*'"
REFERENCE = "tf_keras_resnet50"
# Ours, compared against REFERENCE: plain Keras 3, Keras 3 with the fused BatchNorm, DELG.
OURS = ("keras_resnet50", "keras_resnet50_fused_bn", "delg")
_MODES = ("train", "infer", "train_cpu", "infer_cpu")


def tf_keras_installed() -> bool:
    """Whether the `tf_keras` package (the benchmark extra) can be imported."""
    return importlib.util.find_spec("tf_keras") is not None


class StepWorker:
    """A running `step_worker` process: times its step on command, reports its peak RSS.

    Args:
      step: one of `step_worker.STEPS`.
      image_size, batch_size, num_classes: the step's sizes.
      tiny: small networks (tests).
    """

    def __init__(self, step: str, image_size: int, batch_size: int, num_classes: int, tiny: bool):
        self.step = step
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        env.pop("TF_USE_LEGACY_KERAS", None)
        if step == REFERENCE:
            env["TF_USE_LEGACY_KERAS"] = "1"
        command = [
            sys.executable, "-m", "delg_tf.benchmark.step_worker", f"--step={step}",
            f"--image_size={image_size}", f"--batch_size={batch_size}",
            f"--num_classes={num_classes}",
        ] + (["--tiny"] if tiny else [])  # fmt: skip
        # stderr to a file: a chatty worker must not block on a full pipe.
        self._stderr = tempfile.TemporaryFile(mode="w+")
        self._process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
            text=True, env=env,
        )  # fmt: skip

    def _read(self) -> dict:
        line = self._process.stdout.readline()
        try:
            return json.loads(line)
        except json.JSONDecodeError:
            self._process.kill()
            self._process.wait()
            self._stderr.seek(0)
            tail = self._stderr.read().strip().splitlines()[-1:] or ["no output"]
            raise RuntimeError(
                f"benchmark step worker {self.step} failed (exit {self._process.returncode}): "
                f"{tail[0]}"
            ) from None

    def wait_ready(self) -> None:
        """Blocks until the worker has built and traced its step."""
        self._read()

    def seconds(self, command: str) -> tuple[float, float]:
        """(wall, CPU) seconds of one "train" step or one "infer" pass."""
        self._process.stdin.write(command + "\n")
        self._process.stdin.flush()
        reply = self._read()
        return float(reply["seconds"]), float(reply["cpu_seconds"])

    def close(self) -> float:
        """Stops the worker; returns its peak RSS in GiB."""
        self._process.stdin.write("quit\n")
        self._process.stdin.flush()
        peak = float(self._read()["peak_rss_gib"])
        self._process.wait()
        self._stderr.close()
        return peak

    def kill(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._stderr.close()


def reference_timings(
    steps: tuple[str, ...], image_size: int, batch_size: int, num_classes: int, repeats: int,
    tiny: bool = False,
) -> tuple[dict[str, dict[str, list[float]]], dict[str, float]]:  # fmt: skip
    """Interleaved seconds of every step's training step and inference pass, and peak RSS.

    Returns:
      (step -> {"train", "infer", "train_cpu", "infer_cpu"} -> wall or CPU seconds of each
      run, step -> peak RSS GiB).
    """
    workers = {}
    try:
        for step in steps:  # built side by side (nothing is timed yet), then timed in turn
            workers[step] = StepWorker(step, image_size, batch_size, num_classes, tiny)
        for worker in workers.values():
            worker.wait_ready()
        seconds = {step: {m: [] for m in _MODES} for step in steps}
        for _ in range(repeats):
            for mode in ("train", "infer"):
                for step, worker in workers.items():
                    wall, cpu = worker.seconds(mode)
                    seconds[step][mode].append(wall)
                    seconds[step][f"{mode}_cpu"].append(cpu)
        peaks = {step: worker.close() for step, worker in workers.items()}
        workers = {}
        return seconds, peaks
    finally:
        for worker in workers.values():
            worker.kill()


def run_training_reference(s: Settings, report: Report) -> None:
    """images/s of the tf-keras ResNet50 step and of ours, their ratios and peak RSS.

    The --quick backbone (resnet_tiny) swaps every network for a tiny one.
    """
    tiny = s.backbone == "resnet_tiny"
    steps = (REFERENCE, *OURS)
    seconds, peaks = reference_timings(
        steps, s.image_size, s.batch_size, s.num_classes, s.repeats, tiny=tiny
    )
    size = f"{s.image_size} px, batch {s.batch_size}, {s.num_classes} classes, float32"
    what = {
        REFERENCE: "tf_keras.applications.ResNet50 (Keras 2, fused BatchNorm), SGD momentum, "
        "softmax cross-entropy",
        "keras_resnet50": "keras.applications.ResNet50 (Keras 3 BatchNormalization), fused SGD "
        "momentum, softmax cross-entropy",
        "keras_resnet50_fused_bn": "keras.applications.ResNet50 with delg_tf "
        "FusedBatchNormalization, fused SGD momentum, softmax cross-entropy",
        "delg": "DELG R50 (ArcFace, 3 losses; no clipping, no input pipeline), fused SGD momentum",
    }
    if tiny:
        what = {step: f"{text} [--quick: tiny networks]" for step, text in what.items()}
    for step in steps:
        for mode, label in (("train", "training step"), ("infer", "inference forward")):
            report.add(
                figure(f"training_reference.{step}.{mode}_images_per_second",
                       [s.batch_size / t for t in seconds[step][mode]], "images/s",
                       f"{label}: {what[step]}; {size}")
            )  # fmt: skip
        report.add(
            figure(f"training_reference.{step}.peak_rss_gib", [peaks[step]], "GiB",
                   f"peak resident set of the {step} worker process")
        )  # fmt: skip
    for step in OURS:
        for mode in _MODES:
            # Time ratio reference / ours = images/s ratio ours / reference.
            clock = "CPU seconds (all threads; robust to a shared CPU)" if "cpu" in mode else "wall"
            report.add(
                figure(f"training_reference.{step}_over_tf_keras.{mode}",
                       paired_ratio(seconds[REFERENCE][mode], seconds[step][mode]), "x",
                       f"{step} / {REFERENCE} {mode.split('_')[0]} speed by {clock}, runs "
                       "timed in turn")
            )  # fmt: skip
