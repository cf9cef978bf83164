"""The demo's final outputs: `metrics.json` and `report.md` from the evaluations and figures."""

from __future__ import annotations

import os
from collections.abc import Mapping

from delg_tf.common.atomic_files import write_json_atomically
from delg_tf.common.flags_record import FLAGS_RECORD
from delg_tf.demo import report_markdown as report
from delg_tf.demo.metrics import demo_metrics, learning_checks
from delg_tf.demo.paths import Paths
from delg_tf.demo.stages import StageTime
from delg_tf.demo.training_free import comparison_section
from delg_tf.evaluation.revisited import DEFAULT_KAPPAS


def write_demo_report(
    paths: Paths, preset: str, seed: int, times: Mapping[str, StageTime]
) -> tuple[dict, str]:
    """Writes `<output_dir>/metrics.json` and `<output_dir>/report.md`.

    Args:
      paths: the demo's folders; the evaluations' metrics.json and the figures must exist.
      preset: the preset, shown in the report's setup.
      seed: the seed, shown in the report's setup.
      times: the stages' wall times, in pipeline order (`run_pipeline`'s result).

    Returns:
      The metrics (`demo_metrics`) and the same numbers as a terminal table.

    Raises:
      ValueError: naming the file, if an evaluation's metrics are incomplete.
    """
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
        "training flags": os.path.join(paths.logdir("trained"), FLAGS_RECORD),
        "untrained model": "same flags and seed, weights at their random initialisation "
        "(one step at learning rate 0)",
    }
    stage_seconds = {name: (t.seconds, t.ran) for name, t in times.items()}
    text = report.render_report(
        paths.output_dir,
        metrics,
        DEFAULT_KAPPAS,
        figures,
        stage_seconds,
        setup,
        notes=learning_checks(metrics),
    )
    text += comparison_section(paths)
    report.write_report(os.path.join(paths.output_dir, "report.md"), text)
    return metrics, report.text_table(metrics, DEFAULT_KAPPAS)
