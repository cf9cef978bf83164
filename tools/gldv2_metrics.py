"""delg-gldv2-metrics: Google Landmarks v2 recognition/retrieval scores of a predictions CSV.

Prints Public and Private scores like the official `compute_recognition_metrics.py` and
`compute_retrieval_metrics.py`:

  delg-gldv2-metrics --predictions_path=submission.csv --solution_path=solution.csv

The task comes from the solution header (`landmarks` -> recognition, `images` -> retrieval)
unless `--task` names it; the predictions header must agree.
"""

from __future__ import annotations

from absl import app, flags

from delg_tf.evaluation import gldv2_io, gldv2_metrics
from delg_tools import cli

FLAGS = flags.FLAGS
flags.DEFINE_string("predictions_path", None, "CSV with columns id,landmarks or id,images.")
flags.DEFINE_string("solution_path", None, "CSV with columns id,landmarks|images,Usage.")
flags.DEFINE_enum("task", "auto", ["auto", *gldv2_io.TASKS], "Task; auto reads the header.")

_RULE = "**********************************************"


def recognition_report(solution: gldv2_io.Solution, predictions: gldv2_io.Predictions) -> list[str]:
    """The official recognition report lines: GAP, GAP ignoring non-landmarks, top-1 (%)."""
    splits = (
        ("(Public) ", predictions.public, solution.public),
        ("(Private)", predictions.private, solution.private),
    )
    lines = [_RULE]
    for tag, pred, sol in splits:
        gap = gldv2_metrics.global_average_precision(pred, sol)
        lines.append(f"{tag} Global Average Precision: {gap:f}")
    lines.append(_RULE)
    for tag, pred, sol in splits:
        gap = gldv2_metrics.global_average_precision(pred, sol, ignore_non_gt_test_images=True)
        lines.append(f"{tag} Global Average Precision ignoring non-landmark queries: {gap:f}")
    lines.append(_RULE)
    for tag, pred, sol in splits:
        accuracy = 100.0 * gldv2_metrics.top1_accuracy(pred, sol)
        lines.append(f"{tag} Top-1 accuracy: {accuracy:.2f}")
    return lines


def retrieval_report(solution: gldv2_io.Solution, predictions: gldv2_io.Predictions) -> list[str]:
    """The official retrieval report lines: mAP@100, P@{1,5,10,50,100} (%), positions."""
    splits = (
        ("(Public) ", predictions.public, solution.public),
        ("(Private)", predictions.private, solution.private),
    )
    lines = [_RULE]
    for tag, pred, sol in splits:
        mean_ap = gldv2_metrics.mean_average_precision(pred, sol)
        lines.append(f"{tag} Mean Average Precision: {mean_ap:f}")
    lines.append(_RULE)
    for tag, pred, sol in splits:
        precisions = 100.0 * gldv2_metrics.mean_precisions(pred, sol)
        at = ", ".join(f"P@{k}: {precisions[k - 1]:.2f}" for k in gldv2_metrics.PRECISION_RANKS)
        lines.append(f"{tag} Mean precisions: {at}")
    lines.append(_RULE)
    for tag, pred, sol in splits:
        mean_position, median_position = gldv2_metrics.mean_median_position(pred, sol)
        lines.append(
            f"{tag} Mean position: {mean_position:.2f}, median position: {median_position:.2f}"
        )
    return lines


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    task = None if FLAGS.task == "auto" else FLAGS.task
    try:
        solution = gldv2_io.read_solution(FLAGS.solution_path, task)
        predictions = gldv2_io.read_predictions(FLAGS.predictions_path, solution)
    except (OSError, ValueError) as e:
        raise app.UsageError(str(e)) from e
    print(
        f"Task: {solution.task}; solution: {len(solution.public)} Public, "
        f"{len(solution.private)} Private, {len(solution.ignored)} Ignored test images"
    )
    print(
        f"Predictions: {len(predictions.public)} Public, {len(predictions.private)} Private; "
        f"skipped {predictions.num_ignored} Ignored and {predictions.num_unknown} unknown ids"
    )
    report = recognition_report if solution.task == gldv2_io.RECOGNITION else retrieval_report
    print("\n".join(report(solution, predictions)))


def run() -> None:
    # Required here, not at import: tests import several binaries into one process, and an
    # import-time requirement would make every other binary's flag parsing fail.
    cli.run(
        main, tool="delg-gldv2-metrics", module=__name__,
        required=["predictions_path", "solution_path"],
    )  # fmt: skip


if __name__ == "__main__":
    run()
