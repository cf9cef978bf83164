r"""delg-demo: the whole DELG pipeline on synthetic landmarks (or your data), with a report.

  make demo                       # = python -m delg_tools.demo
  delg-demo --output_dir=demo_output --preset=demo
  delg-demo --tiny                # the seconds-scale version used by the tests

Stages (each prints one line with its wall time; a re-run skips finished stages):
  synthetic   delg-make-synthetic writes GLDv2-layout training data and a revisitop test set
  tfrecords   delg-build-tfrecords converts the training images (train/validation split)
  input       one pass over a few batches of the tf.data training pipeline

Every stage runs its tool as a subprocess (`python -m delg_tools.<tool>`): each absl binary owns
process-global FLAGS (two of them in one process collide), and TensorFlow state such as logical
devices, mixed-precision policies and the memory of a training run is per process. The price is
one TensorFlow import per stage (~3 s).

Resuming: a finished stage leaves `<output_dir>/stages/<stage>.json` holding its command; a
re-run skips a stage whose record matches the command it would run, and re-runs it (and every
later stage) otherwise. The tools themselves resume partial work (shards, images). Each stage's
output goes to `<output_dir>/logs/<stage>.log`.

Your own data instead of the synthetic landmarks (flags, or the environment variables named):
  --gldv2_dir (DELG_DEMO_GLDV2_DIR): a GLDv2-layout folder with train_clean.csv (or train.csv)
      and train/a/b/c/<id>.jpg; replaces the synthetic training set.
  --revisited_gnd (DELG_DEMO_REVISITED_GND): a Revisited Oxford/Paris ground truth (gnd_*.pkl,
      .mat or .json), with --revisited_images_dir (DELG_DEMO_REVISITED_IMAGES_DIR) holding
      <name>.jpg for every query and index image; replaces the synthetic test set.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable

from absl import app, flags

PRESETS = ("tiny", "demo")

_DEF = flags.DEFINE_string
_DEF(
    "output_dir",
    os.environ.get("DELG_DEMO_OUTPUT_DIR", "demo_output"),
    "Where every stage writes (env DELG_DEMO_OUTPUT_DIR).",
)
flags.DEFINE_enum(
    "preset",
    os.environ.get("DELG_DEMO_PRESET", "demo"),
    PRESETS,
    "Size of the synthetic data and of the training run (env DELG_DEMO_PRESET).",
)
flags.DEFINE_boolean("tiny", False, "Shorthand for --preset=tiny.")
flags.DEFINE_integer("seed", 0, "Seed of the data, the split and the training run.", lower_bound=0)
_DEF(
    "gldv2_dir",
    os.environ.get("DELG_DEMO_GLDV2_DIR"),
    "GLDv2-layout training data (train_clean.csv or train.csv, train/a/b/c/<id>.jpg) instead of "
    "the synthetic landmarks (env DELG_DEMO_GLDV2_DIR).",
)
_DEF(
    "revisited_gnd",
    os.environ.get("DELG_DEMO_REVISITED_GND"),
    "Revisited Oxford/Paris ground truth (.pkl, .mat or .json) instead of the synthetic test set "
    "(env DELG_DEMO_REVISITED_GND). Needs --revisited_images_dir.",
)
_DEF(
    "revisited_images_dir",
    os.environ.get("DELG_DEMO_REVISITED_IMAGES_DIR"),
    "Folder of <name>.jpg for the queries and index images of --revisited_gnd "
    "(env DELG_DEMO_REVISITED_IMAGES_DIR).",
)
flags.DEFINE_integer("num_shards", None, "TFRecord shards per split (default: from the preset).")
flags.DEFINE_boolean("verbose", False, "Stream every tool's output instead of logging it.")

FLAGS = flags.FLAGS

# Per preset: synthetic generator overrides and TFRecord shards.
_PRESET_SETTINGS = {
    "tiny": {"synthetic": {}, "num_shards": 2, "input_batches": 2, "batch_size": 4},
    "demo": {"synthetic": {}, "num_shards": 8, "input_batches": 4, "batch_size": 16},
}


class StageError(RuntimeError):
    """A stage failed; the message names it and its log file."""


@dataclasses.dataclass
class Paths:
    """Where the demo reads and writes, all under `output_dir` unless user data is given."""

    output_dir: str
    data_dir: str
    gldv2_dir: str
    tfrecords_dir: str
    gnd_path: str
    images_dir: str
    logs_dir: str
    stages_dir: str

    @classmethod
    def make(
        cls, output_dir: str, gldv2_dir: str | None, gnd: str | None, images: str | None
    ) -> Paths:
        output_dir = os.path.abspath(output_dir)
        data_dir = os.path.join(output_dir, "data")
        synthetic_dir = os.path.join(data_dir, "synthetic")
        return cls(
            output_dir=output_dir,
            data_dir=data_dir,
            gldv2_dir=os.path.abspath(gldv2_dir) if gldv2_dir else synthetic_dir,
            tfrecords_dir=os.path.join(data_dir, "tfrecords"),
            gnd_path=os.path.abspath(gnd)
            if gnd
            else os.path.join(synthetic_dir, "test", "gnd_synthetic.pkl"),
            images_dir=os.path.abspath(images)
            if images
            else os.path.join(synthetic_dir, "test", "jpg"),
            logs_dir=os.path.join(output_dir, "logs"),
            stages_dir=os.path.join(output_dir, "stages"),
        )


@dataclasses.dataclass
class Stage:
    """One step of the pipeline: a tool run as a subprocess, or a function in this process.

    Attributes:
      name: short name, used for the log and record files.
      command: argv of the subprocess (without the interpreter), or None for `function`.
      function: called with the stage's log-file path when `command` is None; returns a short
        summary printed after the stage line.
      identity: what decides the stage's result; a changed identity re-runs the stage.
      ok_exit_codes: exit codes that mean success (delg-build-tfrecords exits 3 when it skipped
        bad images, which is not a failure of the demo).
    """

    name: str
    command: list[str] | None = None
    function: Callable[[str], str] | None = None
    identity: dict | None = None
    ok_exit_codes: tuple[int, ...] = (0,)

    def fingerprint(self) -> dict:
        return {"command": self.command, "identity": self.identity}


def _record_path(paths: Paths, stage: Stage) -> str:
    return os.path.join(paths.stages_dir, stage.name + ".json")


def _finished(paths: Paths, stage: Stage) -> bool:
    try:
        with open(_record_path(paths, stage), encoding="utf-8") as f:
            return json.load(f).get("fingerprint") == stage.fingerprint()
    except (OSError, json.JSONDecodeError):
        return False


def _write_record(paths: Paths, stage: Stage, seconds: float, summary: str) -> None:
    os.makedirs(paths.stages_dir, exist_ok=True)
    path = _record_path(paths, stage)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({"fingerprint": stage.fingerprint(), "seconds": seconds, "summary": summary}, f)
    os.replace(tmp, path)


def _tail(path: str, lines: int = 25) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def run_stage(stage: Stage, paths: Paths, *, force: bool, verbose: bool) -> tuple[bool, float]:
    """Runs one stage unless its record says it is done; returns (ran, seconds)."""
    if not force and _finished(paths, stage):
        print(f"[demo] {stage.name:<12} done before, skipped", flush=True)
        return False, 0.0
    os.makedirs(paths.logs_dir, exist_ok=True)
    log_path = os.path.join(paths.logs_dir, stage.name + ".log")
    start = time.perf_counter()
    summary = ""
    if stage.command is not None:
        argv = [sys.executable, *stage.command]
        with open(log_path, "w", encoding="utf-8") as log:
            log.write("$ " + " ".join(argv) + "\n")
            log.flush()
            out = None if verbose else log
            code = subprocess.call(argv, stdout=out, stderr=subprocess.STDOUT if out else None)
        if code not in stage.ok_exit_codes:
            raise StageError(
                f"stage {stage.name} failed (exit status {code}); command: {' '.join(argv)}\n"
                f"last lines of {log_path}:\n{_tail(log_path)}"
            )
    else:
        try:
            summary = stage.function(log_path) or ""
        except Exception as e:
            raise StageError(f"stage {stage.name} failed: {type(e).__name__}: {e}") from e
    seconds = time.perf_counter() - start
    _write_record(paths, stage, seconds, summary)
    print(
        f"[demo] {stage.name:<12} {seconds:7.1f} s" + (f"  {summary}" if summary else ""),
        flush=True,
    )
    return True, seconds


def _input_pass(tfrecords_dir: str, batches: int, batch_size: int, image_size: int, seed: int):
    def run(log_path: str) -> str:
        from delg_tf.data import reader  # TensorFlow is imported only when this stage runs.

        ds = reader.build_dataset(
            os.path.join(tfrecords_dir, "train-*"),
            global_batch_size=batch_size,
            is_training=True,
            image_size=image_size,
            normalization="delf",
            seed=seed,
        )
        labels, shape = [], None
        for images, batch_labels in ds.take(batches):
            labels.extend(int(v) for v in batch_labels.numpy())
            shape = list(images.shape)
        with open(log_path, "w", encoding="utf-8") as f:
            f.write(f"{batches} batches of images {shape}, labels {labels}\n")
        return f"{batches} batches of {shape}, {len(set(labels))} distinct labels"

    return run


def build_stages(paths: Paths, preset: str, seed: int, num_shards: int | None) -> list[Stage]:
    """The pipeline's stages in order, for `preset`, given what the user supplied."""
    settings = _PRESET_SETTINGS[preset]
    stages = []
    synthetic_dir = os.path.join(paths.data_dir, "synthetic")
    if paths.gldv2_dir == synthetic_dir:
        command = ["-m", "delg_tools.make_synthetic", f"--output_dir={synthetic_dir}"]
        command += [f"--preset={preset}", f"--seed={seed}"]
        command += [f"--{k}={v}" for k, v in sorted(settings["synthetic"].items())]
        stages.append(Stage("synthetic", command=command))
    clean_csv = os.path.join(paths.gldv2_dir, "train_clean.csv")
    csv_flag = (
        f"--train_clean_csv_path={clean_csv}"
        if os.path.exists(clean_csv) or paths.gldv2_dir == synthetic_dir
        else f"--train_csv_path={os.path.join(paths.gldv2_dir, 'train.csv')}"
    )
    stages.append(
        Stage(
            "tfrecords",
            command=[
                "-m",
                "delg_tools.build_tfrecords",
                csv_flag,
                f"--train_directory={os.path.join(paths.gldv2_dir, 'train')}",
                f"--output_directory={paths.tfrecords_dir}",
                f"--num_shards={num_shards or settings['num_shards']}",
                "--generate_train_validation_splits",
                f"--seed={seed}",
                "--noprogress",
            ],
            ok_exit_codes=(0, 3),
        )
    )
    stages.append(
        Stage(
            "input",
            function=_input_pass(
                paths.tfrecords_dir, settings["input_batches"], settings["batch_size"], 64, seed
            ),
            identity={"tfrecords": paths.tfrecords_dir, "seed": seed, "preset": preset},
        )
    )
    return stages


def run_pipeline(stages: list[Stage], paths: Paths, verbose: bool = False) -> dict[str, float]:
    """Runs the stages in order; once one runs, every later one runs too (its input changed)."""
    seconds, force = {}, False
    for stage in stages:
        ran, seconds[stage.name] = run_stage(stage, paths, force=force, verbose=verbose)
        force = force or ran
    return seconds


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if bool(FLAGS.revisited_gnd) != bool(FLAGS.revisited_images_dir):
        raise app.UsageError("--revisited_gnd and --revisited_images_dir go together")
    preset = "tiny" if FLAGS.tiny else FLAGS.preset
    # TensorFlow's C++ INFO lines (oneDNN, CPU features) are noise here; children inherit this.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    paths = Paths.make(
        FLAGS.output_dir, FLAGS.gldv2_dir, FLAGS.revisited_gnd, FLAGS.revisited_images_dir
    )
    os.makedirs(paths.output_dir, exist_ok=True)
    print(f"[demo] preset {preset}, writing to {paths.output_dir}", flush=True)
    stages = build_stages(paths, preset, FLAGS.seed, FLAGS.num_shards)
    start = time.perf_counter()
    try:
        run_pipeline(stages, paths, verbose=FLAGS.verbose)
    except StageError as e:
        print(f"[demo] {e}", file=sys.stderr, flush=True)
        return 1
    print(f"[demo] total {time.perf_counter() - start:.1f} s", flush=True)
    print(
        "[demo] not run yet (their tools have not landed): train, export, calibrate, extract, "
        "retrieve, re-rank, evaluate, report",
        flush=True,
    )
    return 0


def run() -> None:
    app.run(main)


if __name__ == "__main__":
    run()
