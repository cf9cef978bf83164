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

Every tool runs as a subprocess (`python -m delg_tools.<tool>` / `-m delg_tf.train`): each absl
binary owns process-global FLAGS (two of them in one process collide), and TensorFlow state such as
logical devices, mixed-precision policies and a training run's memory is per process, so a stage
cannot leak into the next. The price is one TensorFlow import per stage (~3 s). The figures and
report stages are this binary's own code and run in this process.

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

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable

from absl import app, flags

from delg_tf.data.atomic_files import write_json_atomically
from delg_tf.evaluation.demo_metrics import demo_metrics, learning_checks
from delg_tf.visualization.report import ATTENTION_IMAGES

PRESETS = ("tiny", "demo")
KAPPAS = (1, 5, 10)
_REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_TRAIN_FLAGFILE = os.path.join(_REPO_DIR, "experiments", "demo_cpu.flags")
# The export's default pyramid (delg_tf.export.export_settings) and its three global scales:
# the untrained model runs only these, as it is evaluated by global search alone.
_GLOBAL_SCALES = "0.70710677,1.0,1.4142135"

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

# Per preset: synthetic-generator overrides, TFRecord shards, delg-train flags added after the
# flagfile, the calibration sample and target feature count, and the re-ranking depth.
_PRESET_SETTINGS = {
    "tiny": {
        "synthetic": {},
        "num_shards": 2,
        "train_flags": [
            "--max_iters=12",
            "--batch_size=8",
            "--image_size=64",
            "--report_interval=4",
            "--eval_interval=12",
            "--eval_batches=1",
            "--save_interval=12",
        ],
        "calibration_images": 10,
        "calibration_target": 100,
        "num_to_rerank": 20,
    },
    "demo": {
        "synthetic": {},
        "num_shards": 8,
        "train_flags": [],
        "calibration_images": 50,
        # The official 1000 features suits ~1024 px images; the synthetic ones are 288 px.
        # Fewer, attention-selected features also make re-ranking ~1.5x faster.
        "calibration_target": 300,
        "num_to_rerank": 100,
    },
}


class StageError(RuntimeError):
    """A stage failed; the message names it and its log file."""


@dataclasses.dataclass
class Paths:
    """Where the demo reads and writes; all under `output_dir` unless the user gives data."""

    output_dir: str
    synthetic_dir: str
    gldv2_dir: str
    tfrecords_dir: str
    gnd_path: str
    images_dir: str
    logs_dir: str
    stages_dir: str
    figures_dir: str

    @classmethod
    def make(
        cls, output_dir: str, gldv2_dir: str | None, gnd: str | None, images: str | None
    ) -> Paths:
        output_dir = os.path.abspath(output_dir)
        synthetic_dir = os.path.join(output_dir, "data", "synthetic")
        return cls(
            output_dir=output_dir,
            synthetic_dir=synthetic_dir,
            gldv2_dir=os.path.abspath(gldv2_dir) if gldv2_dir else synthetic_dir,
            tfrecords_dir=os.path.join(output_dir, "data", "tfrecords"),
            gnd_path=os.path.abspath(gnd)
            if gnd
            else os.path.join(synthetic_dir, "test", "gnd_synthetic.pkl"),
            images_dir=os.path.abspath(images)
            if images
            else os.path.join(synthetic_dir, "test", "jpg"),
            logs_dir=os.path.join(output_dir, "logs"),
            stages_dir=os.path.join(output_dir, "stages"),
            figures_dir=os.path.join(output_dir, "figures"),
        )

    def logdir(self, model: str) -> str:
        return os.path.join(self.output_dir, "train", model)

    def export(self, model: str) -> str:
        return os.path.join(self.output_dir, "export", model)

    def features(self, model: str, image_set: str) -> str:
        return os.path.join(self.output_dir, "features", model, image_set)

    def evaluation(self, model: str) -> str:
        return os.path.join(self.output_dir, "evaluation", model)


@dataclasses.dataclass
class Stage:
    """One step of the pipeline: a tool run as a subprocess, or a function in this process.

    Attributes:
      name: short name, used for the log and record files.
      command: argv of the subprocess after the interpreter, or None for `function`.
      function: called with the stage's log-file path when `command` is None; returns a short
        summary printed after the stage line.
      identity: what else decides the stage's result; a changed identity re-runs the stage.
      outputs: files/folders the stage creates; removed before it starts over (never when it
        resumes after an interruption).
      ok_exit_codes: exit codes that mean success (delg-build-tfrecords exits 3 when it skipped
        bad images, which does not stop the demo).
    """

    name: str
    command: list[str] | None = None
    function: Callable[[str], str] | None = None
    identity: dict | None = None
    outputs: tuple[str, ...] = ()
    ok_exit_codes: tuple[int, ...] = (0,)

    def fingerprint(self) -> dict:
        return json.loads(json.dumps({"command": self.command, "identity": self.identity}))


@dataclasses.dataclass
class StageTime:
    """Wall time of a stage; `ran` is False when an earlier run finished it."""

    seconds: float
    ran: bool


def _record_path(paths: Paths, stage: Stage) -> str:
    return os.path.join(paths.stages_dir, stage.name + ".json")


def _read_record(paths: Paths, stage: Stage) -> dict | None:
    try:
        with open(_record_path(paths, stage), encoding="utf-8") as f:
            record = json.load(f)
    except (OSError, json.JSONDecodeError):
        return None
    return record if isinstance(record, dict) else None


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


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.remove(path)


def run_stage(stage: Stage, paths: Paths, *, force: bool, verbose: bool) -> StageTime:
    """Runs one stage unless its record says it is done.

    Args:
      stage: the stage.
      paths: the demo's folders.
      force: an earlier stage ran, so this one's input changed: start over.
      verbose: stream the tool's output instead of writing it to the stage's log.

    Raises:
      StageError: naming the stage, the command and the end of its log.
    """
    record = _read_record(paths, stage)
    if not force and record is not None and record.get("fingerprint") == stage.fingerprint():
        seconds = float(record.get("seconds", 0.0))
        print(f"[demo] {stage.name:<24} done by an earlier run ({seconds:.1f} s)", flush=True)
        return StageTime(seconds, ran=False)
    if force or record is not None:
        for path in stage.outputs:  # start over: a resumed tool would mix old and new work
            _remove(path)
    if record is not None:
        os.remove(_record_path(paths, stage))
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
        f"[demo] {stage.name:<24} {seconds:7.1f} s" + (f"  {summary}" if summary else ""),
        flush=True,
    )
    return StageTime(seconds, ran=True)


def run_pipeline(stages: list[Stage], paths: Paths, verbose: bool = False) -> dict[str, StageTime]:
    """Runs the stages in order; once one runs, every later one starts over too."""
    times, force = {}, False
    for stage in stages:
        times[stage.name] = run_stage(stage, paths, force=force, verbose=verbose)
        force = force or times[stage.name].ran
    return times


# ------------------------------------------------------------------------------ the stages
def _tool(name: str, *args: str) -> list[str]:
    return ["-m", f"delg_tools.{name}", *args]


def build_stages(
    paths: Paths,
    preset: str,
    seed: int,
    train_flagfile: str,
    extra_train_flags: list[str],
    num_shards: int | None,
    num_to_rerank: int | None,
) -> list[Stage]:
    """The pipeline's stages in order (the report stage is added by `main`)."""
    settings = _PRESET_SETTINGS[preset]
    stages = []
    if paths.gldv2_dir == paths.synthetic_dir:
        command = _tool(
            "make_synthetic", f"--output_dir={paths.synthetic_dir}", f"--preset={preset}"
        )
        command += [f"--seed={seed}"]
        command += [f"--{k}={v}" for k, v in sorted(settings["synthetic"].items())]
        stages.append(Stage("synthetic", command=command, outputs=(paths.synthetic_dir,)))
    clean_csv = os.path.join(paths.gldv2_dir, "train_clean.csv")
    csv_flag = (
        f"--train_clean_csv_path={clean_csv}"
        if os.path.exists(clean_csv) or paths.gldv2_dir == paths.synthetic_dir
        else f"--train_csv_path={os.path.join(paths.gldv2_dir, 'train.csv')}"
    )
    stages.append(
        Stage(
            "tfrecords",
            command=_tool(
                "build_tfrecords",
                csv_flag,
                f"--train_directory={os.path.join(paths.gldv2_dir, 'train')}",
                f"--output_directory={paths.tfrecords_dir}",
                f"--num_shards={num_shards or settings['num_shards']}",
                "--generate_train_validation_splits",
                f"--seed={seed}",
                "--noprogress",
            ),
            outputs=(paths.tfrecords_dir,),
            ok_exit_codes=(0, 3),
        )
    )
    train_flags = [
        f"--flagfile={train_flagfile}",
        f"--train_file_pattern={os.path.join(paths.tfrecords_dir, 'train-*')}",
        f"--seed={seed}",
        *settings["train_flags"],
        *extra_train_flags,
    ]
    # The flagfile's content decides the run too, not only its path.
    flagfile_identity = {"train_flagfile": _file_text(train_flagfile)}
    stages.append(
        Stage(
            "train_untrained",
            command=[
                "-m",
                "delg_tf.train",
                *train_flags,
                f"--logdir={paths.logdir('untrained')}",
                "--validation_file_pattern=",
                # One step at learning rate 0 leaves every weight at its seeded random
                # initialisation; only BatchNorm's moving statistics take one update (1%), from
                # a first batch made reproducible by the deterministic input order.
                "--max_iters=1",
                "--initial_lr=0",
                "--deterministic_input",
            ],
            identity=flagfile_identity,
            outputs=(paths.logdir("untrained"),),
        )
    )
    stages.append(
        Stage(
            "train",
            command=[
                "-m",
                "delg_tf.train",
                *train_flags,
                f"--logdir={paths.logdir('trained')}",
                f"--validation_file_pattern={os.path.join(paths.tfrecords_dir, 'validation-*')}",
            ],
            identity=flagfile_identity,
            outputs=(paths.logdir("trained"),),
        )
    )
    for model in ("untrained", "trained"):
        stages.append(
            Stage(
                f"export_{model}",
                command=_tool(
                    "export",
                    f"--ckpt_path={paths.logdir(model)}",
                    f"--export_path={paths.export(model)}",
                ),
                outputs=(paths.export(model),),
            )
        )
    synthetic_test = paths.gnd_path.startswith(paths.synthetic_dir + os.sep)
    # Real test images (~1024 px) get the official 1000 features per image.
    calibration_target = settings["calibration_target"] if synthetic_test else 1000
    stages.append(
        Stage(
            "calibrate",
            command=_tool(
                "calibrate_threshold",
                f"--model_path={paths.export('trained')}",
                f"--images_dir={paths.images_dir}",
                f"--max_images={settings['calibration_images']}",
                f"--target_features={calibration_target}",
                f"--seed={seed}",
            ),
        )
    )
    for model in ("untrained", "trained"):
        # The untrained model is only searched globally: its three global scales suffice, and
        # no threshold is calibrated for it (any value works; its local features are unused).
        only_global = (
            [f"--image_scales={_GLOBAL_SCALES}", "--global_scales_ind=0,1,2"]
            + ["--attention_threshold=0"]
            if model == "untrained"
            else []
        )
        for image_set in ("query", "index"):
            stages.append(
                Stage(
                    f"extract_{model}_{image_set}",
                    command=_tool(
                        "extract",
                        f"--model_path={paths.export(model)}",
                        f"--output_features_dir={paths.features(model, image_set)}",
                        f"--dataset_file_path={paths.gnd_path}",
                        f"--images_dir={paths.images_dir}",
                        f"--image_set={image_set}",
                        *only_global,
                    ),
                    outputs=(paths.features(model, image_set),),
                )
            )
    for model in ("untrained", "trained"):
        rerank = (
            [
                "--use_geometric_verification",
                f"--num_to_rerank={num_to_rerank or settings['num_to_rerank']}",
            ]
            if model == "trained"
            else []
        )
        stages.append(
            Stage(
                f"evaluate_{model}",
                command=_tool(
                    "evaluate",
                    f"--dataset_file_path={paths.gnd_path}",
                    f"--query_features_dir={paths.features(model, 'query')}",
                    f"--index_features_dir={paths.features(model, 'index')}",
                    f"--output_dir={paths.evaluation(model)}",
                    *rerank,
                ),
                outputs=(paths.evaluation(model),),
            )
        )
    stages.append(
        Stage(
            "figures",
            function=_figures_stage(paths),
            identity={"figures": paths.figures_dir},
            outputs=(paths.figures_dir,),
        )
    )
    return stages


def _file_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError:
        return None


# ---------------------------------------------------------------------------- figures
TOP_K = 5


def _figures_stage(paths: Paths) -> Callable[[str], str]:
    def run(log_path: str) -> str:
        # TensorFlow and matplotlib load only when this stage runs.
        from delg_tf.data.revisited_ground_truth import load_ground_truth
        from delg_tf.visualization import match_figure, training_curves
        from delg_tf.visualization.attention_map import visualize_attention

        os.makedirs(paths.figures_dir, exist_ok=True)
        log = []
        training_curves.write_training_curves(
            paths.logdir("trained"),
            os.path.join(paths.figures_dir, "training_curves.png"),
            title="DELG demo training",
        )
        gt = load_ground_truth(paths.gnd_path)
        query = match_figure.write_query_figure(
            gt,
            paths.images_dir,
            paths.features("trained", "query"),
            paths.features("trained", "index"),
            os.path.join(paths.figures_dir, "query_matches.png"),
            query=0,
            top_k=TOP_K,
        )
        log.append(f"query figure: {json.dumps(query)}")
        # Attention of the query and its first two results (full images).
        names = [query["query"], *(name for name, _, _ in query["top"])][:ATTENTION_IMAGES]
        for i, name in enumerate(names):
            count = visualize_attention(
                paths.export("trained"),
                os.path.join(paths.images_dir, name + ".jpg"),
                os.path.join(paths.figures_dir, f"attention_{i}_{name}.png"),
            )
            log.append(f"attention {name}: {count} keypoints")
        with open(log_path, "w", encoding="utf-8") as f:
            f.write("\n".join(log) + "\n")
        return f"{len(os.listdir(paths.figures_dir))} PNGs"

    return run


# ----------------------------------------------------------------------------- report
def _report_stage(paths: Paths, preset: str, seed: int, times: dict[str, StageTime]):
    from delg_tf.visualization import report

    metrics = demo_metrics(
        os.path.join(paths.evaluation("untrained"), "metrics.json"),
        os.path.join(paths.evaluation("trained"), "metrics.json"),
    )
    write_json_atomically(os.path.join(paths.output_dir, "metrics.json"), metrics, indent=2)

    figures = [
        report.Figure(
            os.path.join(paths.figures_dir, "training_curves.png"),
            "Training losses, accuracies (train and validation) and learning rate.",
        ),
        report.Figure(
            os.path.join(paths.figures_dir, "query_matches.png"),
            "A query (cropped to its box), its top results after re-ranking (green positive, "
            "orange junk, red negative) and the RANSAC inliers with the first result.",
        ),
    ]
    for name in sorted(os.listdir(paths.figures_dir)):
        if name.startswith("attention_"):
            figures.append(
                report.Figure(
                    os.path.join(paths.figures_dir, name),
                    "Attention of the trained network (left) and the keypoints kept (right).",
                )
            )
    setup = {
        "preset": preset,
        "seed": seed,
        "training data": paths.gldv2_dir,
        "test set": f"{paths.gnd_path} (images: {paths.images_dir})",
        "training flags": os.path.join(paths.logdir("trained"), "flags.txt"),
        "untrained model": "same flags and seed, weights at their random initialisation "
        "(one step at learning rate 0)",
    }
    stage_seconds = {name: (t.seconds, t.ran) for name, t in times.items()}
    text = report.render_report(
        paths.output_dir,
        metrics,
        KAPPAS,
        figures,
        stage_seconds,
        setup,
        notes=learning_checks(metrics),
    )
    report.write_report(os.path.join(paths.output_dir, "report.md"), text)
    return metrics, report.text_table(metrics, KAPPAS)


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if bool(FLAGS.revisited_gnd) != bool(FLAGS.revisited_images_dir):
        raise app.UsageError("--revisited_gnd and --revisited_images_dir go together")
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
        metrics, table = _report_stage(paths, preset, FLAGS.seed, times)
    except StageError as e:
        print(f"[demo] {e}", file=sys.stderr, flush=True)
        return 1
    print(f"[demo] {'report':<24} {time.perf_counter() - report_start:7.1f} s", flush=True)
    total = time.perf_counter() - start
    print(f"[demo] total {total:.1f} s; report: {os.path.join(paths.output_dir, 'report.md')}")
    print("\n" + table)
    for note in learning_checks(metrics):
        print(note)
    return 0


def run() -> None:
    app.run(main)


if __name__ == "__main__":
    run()
