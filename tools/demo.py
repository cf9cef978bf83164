r"""delg-demo: the whole DELG pipeline on synthetic landmarks (or your data), with a report.

  make demo                       # = python -m delg_tools.demo
  delg-demo --output_dir=demo_output --preset=demo
  delg-demo --tiny                # the small version the tests run

Stages, in order (each prints one line with its wall time):
  synthetic          delg-make-synthetic: GLDv2-layout training set + revisitop test set
  tfrecords          delg-build-tfrecords: train/validation TFRecords and relabeling.csv
  train_untrained    delg-train for one step at learning rate 0: the same architecture and
                     seed as the trained run, weights left at their random initialisation
  train              delg-train with the demo flagfile (experiments/demo_cpu.flags)
  export_untrained   delg-export of both checkpoints
  export_trained
  calibrate          delg-calibrate-threshold of the trained export on the test images
  extract_*          delg-extract of the queries (cropped to bbx) and the index, per model; the
                     untrained model runs only the three global scales (global search only)
  evaluate_untrained delg-evaluate, global search
  evaluate_trained   delg-evaluate, global search and RANSAC re-ranking
  figures            training curves, attention heatmaps, a query with its top results and
                     inlier matches (PNGs in <output_dir>/figures)
  report             <output_dir>/metrics.json and <output_dir>/report.md; prints the table

Every tool runs as a subprocess (`python -m delg_tools.<tool>`): each absl
binary owns process-global FLAGS (two of them in one process collide), and TensorFlow state such as
logical devices, mixed-precision policies and a training run's memory is per process, so a stage
cannot leak into the next. The price is one TensorFlow import per stage (~3 s). The figures and
report stages (delg_tf/demo/figures.py, report.py) run in this process.

Resuming: a finished stage leaves `<output_dir>/stages/<stage>.json` holding what it ran. A re-run
skips a stage whose record matches; a stage without a record (interrupted) runs again and its
tool resumes its partial work (checkpoints, shards, feature stores); a stage whose record differs
(other flags) or that follows a stage that ran starts over from an empty output. Each stage's output
is in `<output_dir>/logs/<stage>.log`.

Your own data instead of the synthetic landmarks (flags, or the environment variables named):
  --gldv2_dir (DELG_DEMO_GLDV2_DIR): a GLDv2-layout folder with train_clean.csv (or train.csv)
      and train/a/b/c/<id>.jpg; replaces the synthetic training set.
  --revisited_gnd (DELG_DEMO_REVISITED_GND): a Revisited Oxford/Paris ground truth (gnd_*.pkl,
      .mat or .json), with --revisited_images_dir (DELG_DEMO_REVISITED_IMAGES_DIR) holding
      <name>.jpg for every query and index image; replaces the synthetic test set.
  --train_flagfile (DELG_DEMO_TRAIN_FLAGFILE): delg-train flags, e.g.
      experiments/r50_delg_gldv2_clean.flags for a real run.
"""

from __future__ import annotations

import os
import sys
import time

from absl import app, flags

from delg_tf.data.revisited_ground_truth import load_ground_truth
from delg_tf.demo.child_process import Interrupted
from delg_tf.demo.metrics import learning_checks
from delg_tf.demo.paths import Paths
from delg_tf.demo.pipeline import build_stages
from delg_tf.demo.presets import PRESETS
from delg_tf.demo.report import write_demo_report
from delg_tf.demo.stages import StageError, run_pipeline
from delg_tools import cli

_REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_TRAIN_FLAGFILE = os.path.join(_REPO_DIR, "experiments", "demo_cpu.flags")

_DEF = flags.DEFINE_string
_DEF(
    "output_dir",
    os.environ.get("DELG_DEMO_OUTPUT_DIR", "demo_output"),
    "Where every stage writes (env DELG_DEMO_OUTPUT_DIR).",
)
_ENV_PRESET = os.environ.get("DELG_DEMO_PRESET", "demo")
flags.DEFINE_enum(
    "preset",
    _ENV_PRESET if _ENV_PRESET in PRESETS else "demo",
    PRESETS,
    "Size of the synthetic data and of the training run (env DELG_DEMO_PRESET). 'tiny' is a "
    "seconds-scale smoke run whose numbers mean nothing.",
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
_DEF(
    "train_flagfile",
    os.environ.get("DELG_DEMO_TRAIN_FLAGFILE", DEFAULT_TRAIN_FLAGFILE),
    "delg-train flagfile (env DELG_DEMO_TRAIN_FLAGFILE). The demo adds --logdir, the file "
    "patterns and --seed; the tiny preset also shortens the run.",
)
flags.DEFINE_list(
    "train_flags",
    [],
    "Extra delg-train flags after the flagfile, e.g. --train_flags=--max_iters=900,--batch_size=64",
)
flags.DEFINE_integer("num_shards", None, "TFRecord shards per split (default: from the preset).")
flags.DEFINE_integer(
    "num_to_rerank", None, "Images re-ranked per query (default: from the preset; official 100)."
)
flags.DEFINE_boolean("verbose", False, "Stream every tool's output instead of logging it.")

FLAGS = flags.FLAGS


def _check_inputs() -> None:
    """The user's data, checked before minutes of synthesis and training (issue 12)."""
    if bool(FLAGS.revisited_gnd) != bool(FLAGS.revisited_images_dir):
        raise app.UsageError("--revisited_gnd and --revisited_images_dir go together")
    if FLAGS.revisited_gnd:
        if not os.path.isfile(FLAGS.revisited_gnd):
            raise app.UsageError(f"--revisited_gnd={FLAGS.revisited_gnd}: no such file")
        try:
            load_ground_truth(FLAGS.revisited_gnd)
        except (OSError, ValueError, KeyError) as error:
            raise app.UsageError(f"--revisited_gnd={FLAGS.revisited_gnd}: {error}") from None
    for flag in ("revisited_images_dir", "gldv2_dir"):
        if FLAGS[flag].value and not os.path.isdir(FLAGS[flag].value):
            raise app.UsageError(f"--{flag}={FLAGS[flag].value} is not a directory")
    if os.path.exists(FLAGS.output_dir) and not os.path.isdir(FLAGS.output_dir):
        raise app.UsageError(f"--output_dir={FLAGS.output_dir} is a file")


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    _check_inputs()
    if _ENV_PRESET not in PRESETS:
        raise app.UsageError(f"DELG_DEMO_PRESET={_ENV_PRESET!r}: choose one of {PRESETS}")
    if not os.path.isfile(FLAGS.train_flagfile):
        raise app.UsageError(f"--train_flagfile {FLAGS.train_flagfile}: no such file")
    preset = "tiny" if FLAGS.tiny else FLAGS.preset
    # TensorFlow's C++ INFO lines (oneDNN, CPU features) are noise here; children inherit this.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    paths = Paths.make(
        FLAGS.output_dir, FLAGS.gldv2_dir, FLAGS.revisited_gnd, FLAGS.revisited_images_dir
    )
    os.makedirs(paths.output_dir, exist_ok=True)
    print(f"[demo] preset {preset}, writing to {paths.output_dir}", flush=True)
    stages = build_stages(
        paths,
        preset,
        FLAGS.seed,
        os.path.abspath(FLAGS.train_flagfile),
        list(FLAGS.train_flags),
        FLAGS.num_shards,
        FLAGS.num_to_rerank,
    )
    start = time.perf_counter()
    try:
        times = run_pipeline(stages, paths, verbose=FLAGS.verbose)
        report_start = time.perf_counter()
        metrics, table = write_demo_report(paths, preset, FLAGS.seed, times)
    except Interrupted as e:
        raise cli.Interrupted(str(e)) from None
    except StageError as e:
        print(f"[demo] {e}", file=sys.stderr, flush=True)
        return cli.EXIT_BUG
    print(f"[demo] {'report':<24} {time.perf_counter() - report_start:7.1f} s", flush=True)
    total = time.perf_counter() - start
    print(f"[demo] total {total:.1f} s; report: {os.path.join(paths.output_dir, 'report.md')}")
    print("\n" + table)
    for note in learning_checks(metrics):
        print(note)
    return 0


def run() -> None:
    cli.require_positive("num_shards", "num_to_rerank")
    cli.run(main, tool="delg-demo", module=__name__)


if __name__ == "__main__":
    run()
