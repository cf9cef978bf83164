"""Google Landmarks v2 challenge metrics (as the official `google_landmarks_dataset/metrics.py`).

Recognition: GAP (micro average precision over score-sorted predictions) and top-1 accuracy.
Retrieval: mAP@100, mean precision@k and mean/median position of the first correct result.

Inputs are dicts as read by `delg_tf.evaluation.gldv2_io`: a solution maps test id -> list of
ground-truth ids; recognition predictions map test id -> `(label, score)`; retrieval predictions
map test id -> list of index ids, best first. Every retrieval mean runs over all solution
queries, so a query without predictions counts as 0 (position `max_predictions + 1`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from delg_tf.evaluation.gldv2_io import RecognitionPrediction

PRECISION_RANKS = (1, 5, 10, 50, 100)


def _check_known(predictions: Mapping[str, object], solution: Mapping[str, Sequence]) -> None:
    for test_id in predictions:
        if test_id not in solution:
            raise ValueError(f"prediction for test id {test_id!r} which is not in the solution")


def global_average_precision(
    predictions: Mapping[str, RecognitionPrediction | tuple[int, float]],
    solution: Mapping[str, Sequence[int]],
    ignore_non_gt_test_images: bool = False,
) -> float:
    """Recognition GAP (micro AP), Kaggle convention.

    Predictions are sorted by score descending, ties by test id then label ascending; GAP is
    the sum of precision@i over the correct predictions, divided by the number of test images
    with non-empty ground truth.

    Args:
        predictions: test id -> (label, score); at most one per test id.
        solution: test id -> ground-truth landmark ids (empty for non-landmark images).
        ignore_non_gt_test_images: Skip predictions for images without ground truth instead of
            counting them as wrong (False for the challenge).

    Returns:
        GAP in [0, 1]; NaN when no test image has ground truth.

    Raises:
        ValueError: If a prediction's test id is not in the solution.
    """
    _check_known(predictions, solution)
    num_positives = sum(1 for labels in solution.values() if len(labels))
    if not num_positives:
        return float("nan")
    ordered = sorted(
        predictions.items(), key=lambda item: (-float(item[1][1]), item[0], int(item[1][0]))
    )
    gap = 0.0
    seen = correct = 0
    for test_id, (label, _) in ordered:
        if ignore_non_gt_test_images and not len(solution[test_id]):
            continue
        seen += 1
        if label in solution[test_id]:
            correct += 1
            gap += correct / seen
    return gap / num_positives


def top1_accuracy(
    predictions: Mapping[str, RecognitionPrediction | tuple[int, float]],
    solution: Mapping[str, Sequence[int]],
) -> float:
    """Fraction of test images with ground truth whose predicted label is correct.

    Returns:
        Accuracy in [0, 1]; NaN when no test image has ground truth.
    """
    _check_known(predictions, solution)
    with_gt = [test_id for test_id, labels in solution.items() if len(labels)]
    if not with_gt:
        return float("nan")
    correct = sum(1 for t in with_gt if t in predictions and predictions[t][0] in set(solution[t]))
    return correct / len(with_gt)


def _hits(prediction: Sequence[str], relevant: set[str], max_predictions: int) -> np.ndarray:
    """bool `[max_predictions]`: position i holds a correct, first-seen prediction."""
    hits = np.zeros(max_predictions, dtype=bool)
    seen: set[str] = set()
    for i, image_id in enumerate(prediction[:max_predictions]):
        # A duplicate keeps its position but earns nothing (official convention).
        if image_id not in seen:
            hits[i] = image_id in relevant
            seen.add(image_id)
    return hits


def mean_average_precision(
    predictions: Mapping[str, Sequence[str]],
    solution: Mapping[str, Sequence[str]],
    max_predictions: int = 100,
) -> float:
    """Retrieval mAP@max_predictions.

    Per query: sum over correct, non-duplicate hits at 0-based position i < max_predictions of
    precision@(i+1), divided by min(#relevant, max_predictions); averaged over all solution
    queries (no prediction -> 0; no relevant image -> 0).

    Returns:
        mAP in [0, 1]; NaN for an empty solution.

    Raises:
        ValueError: If a prediction's test id is not in the solution.
    """
    _check_known(predictions, solution)
    if not solution:
        return float("nan")
    total = 0.0
    positions = np.arange(1, max_predictions + 1)
    for test_id, prediction in predictions.items():
        relevant = set(solution[test_id])
        if not relevant:
            continue
        hits = _hits(prediction, relevant, max_predictions)
        precision_at_hits = np.cumsum(hits)[hits] / positions[hits]
        total += precision_at_hits.sum() / min(len(relevant), max_predictions)
    return float(total / len(solution))


def mean_precisions(
    predictions: Mapping[str, Sequence[str]],
    solution: Mapping[str, Sequence[str]],
    max_predictions: int = 100,
) -> np.ndarray:
    """Mean precision@k for k = 1..max_predictions, over all solution queries.

    Returns:
        float64 `[max_predictions]`; entry k-1 is mean P@k (duplicates earn nothing, a short
        list keeps dividing by k). NaN for an empty solution.
    """
    _check_known(predictions, solution)
    if not solution:
        return np.full(max_predictions, np.nan)
    total = np.zeros(max_predictions)
    positions = np.arange(1, max_predictions + 1)
    for test_id, prediction in predictions.items():
        total += np.cumsum(_hits(prediction, set(solution[test_id]), max_predictions)) / positions
    return total / len(solution)


def mean_median_position(
    predictions: Mapping[str, Sequence[str]],
    solution: Mapping[str, Sequence[str]],
    max_predictions: int = 100,
) -> tuple[float, float]:
    """Mean and median 1-based position of the first correct result, over all solution queries.

    A query with no correct result in its first `max_predictions` (or no prediction) counts as
    position `max_predictions + 1`.

    Returns:
        (mean, median); NaN for an empty solution.
    """
    _check_known(predictions, solution)
    if not solution:
        return float("nan"), float("nan")
    positions = []
    for test_id, relevant in solution.items():
        relevant = set(relevant)
        position = max_predictions + 1
        for i, image_id in enumerate(predictions.get(test_id, [])[:max_predictions]):
            if image_id in relevant:
                position = i + 1
                break
        positions.append(position)
    return float(np.mean(positions)), float(np.median(positions))
