"""The demo's stages in order and the tool command each one runs.

Every tool runs as a subprocess (`python -m delg_tools.<tool>`): each absl
binary owns process-global FLAGS (two of them in one process collide), and TensorFlow state such
as logical devices, mixed-precision policies and a training run's memory is per process, so a
stage cannot leak into the next. Only the figures stage runs in this process.
"""

from __future__ import annotations

import functools
import os

from delg_tf.demo.figures import write_figures
from delg_tf.demo.paths import Paths
from delg_tf.demo.presets import PRESET_SETTINGS
from delg_tf.demo.stages import Stage
from delg_tf.demo.training_free import comparison_dir, write_training_free_comparison
from delg_tf.export.export_settings import DEFAULT_GLOBAL_SCALES_IND, DEFAULT_IMAGE_SCALES

# The export's default pyramid restricted to its three global scales: the untrained model runs
# only these, as it is evaluated by global search alone.
_GLOBAL_SCALES = ",".join(str(DEFAULT_IMAGE_SCALES[i]) for i in DEFAULT_GLOBAL_SCALES_IND)


def _tool(name: str, *args: str) -> list[str]:
    return ["-m", f"delg_tools.{name}", *args]


def _file_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError:
        return None


def build_stages(
    paths: Paths,
    preset: str,
    seed: int,
    train_flagfile: str,
    extra_train_flags: list[str],
    num_shards: int | None,
    num_to_rerank: int | None,
) -> list[Stage]:
    """The pipeline's stages in order (the report follows them, see `delg_tf.demo.report`).

    Args:
      paths: the demo's folders; the synthetic stage runs only when `paths.gldv2_dir` is the
        synthetic folder.
      preset: a key of `PRESET_SETTINGS`.
      seed: seed of the data, the split and the training run.
      train_flagfile: the delg-train flagfile; its content is part of the training stages'
        identity, so editing it re-runs them.
      extra_train_flags: delg-train flags added after the flagfile and the preset's flags.
      num_shards: TFRecord shards per split, or None for the preset's.
      num_to_rerank: images re-ranked per query, or None for the preset's.

    Returns:
      The stages, from the synthetic data (or the TFRecords) to the figures.
    """
    settings = PRESET_SETTINGS[preset]
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
                "delg_tools.train",
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
                "delg_tools.train",
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
            "training_free",
            function=functools.partial(
                write_training_free_comparison,
                paths,
                num_to_rerank or settings["num_to_rerank"],
            ),
            identity={"training_free": comparison_dir(paths)},
            outputs=(comparison_dir(paths),),
        )
    )
    stages.append(
        Stage(
            "figures",
            function=functools.partial(write_figures, paths),
            identity={"figures": paths.figures_dir},
            outputs=(paths.figures_dir,),
        )
    )
    return stages
