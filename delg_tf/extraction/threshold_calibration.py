"""Chooses a model's absolute attention threshold from a sample of images.

The threshold is a property of each trained model (the official checkpoints use 166 to 455), so a
retrained model needs its own. Method: run the export at its default scales with no threshold
and no cap, and for each image take the score of its `target`-th strongest location (the highest
threshold that still gives that image `target` features; 0 if it has fewer locations). The
median of these per-image thresholds gives a threshold at which the median image yields `target`
features (default 1000 = the official max_feature_num, so a typical image fills its quota with
features the model finds salient, and weaker images give fewer).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from delg_tf.export.export_settings import DEFAULT_MAX_FEATURE_NUM, set_attention_threshold
from delg_tf.extraction.extractor import (
    ExtractionOptions,
    SavedModelExtractor,
    image_dataset,
    settings_if_any,
)
from delg_tf.extraction.image_inputs import ImageRecord
from delg_tf.extraction.model_loading import DELG_TF

_LOG = logging.getLogger(__name__)
_ALL = np.iinfo(np.int32).max
_NO_THRESHOLD = -1e30


def image_threshold(scores: np.ndarray, target: int) -> float:
    """Highest threshold giving this image at least `target` features (0.0 if impossible).

    Args:
      scores: float [N] attention of every location over all scales.
      target: wanted feature count (>= 1).
    """
    if target < 1:
        raise ValueError(f"target must be >= 1, got {target}")
    scores = np.asarray(scores, np.float64).reshape(-1)
    if scores.size < target:
        return 0.0
    return float(np.partition(scores, scores.size - target)[scores.size - target])


def choose_threshold(per_image_scores: Sequence[np.ndarray], target: int) -> float:
    """Median over images of `image_threshold`."""
    if not per_image_scores:
        raise ValueError("no images to calibrate on")
    return float(np.median([image_threshold(s, target) for s in per_image_scores]))


def feature_counts(
    per_image_scores: Sequence[np.ndarray], threshold: float, max_feature_num: int
) -> np.ndarray:
    """Features per image at `threshold` (compared in float32, as in the graph), capped."""
    return np.array(
        [min(int(np.sum(np.asarray(s, np.float32) >= np.float32(threshold))), max_feature_num)
         for s in per_image_scores]
    )  # fmt: skip


@dataclasses.dataclass
class CalibrationResult:
    """Outcome of a calibration.

    Attributes:
      threshold: The chosen absolute attention threshold.
      target: Wanted features per typical image.
      counts: Features each sample image yields at `threshold` (capped at max_feature_num).
      failures: (image id, reason) of sample images that could not be read.
    """

    threshold: float
    target: int
    counts: np.ndarray
    failures: list[tuple[str, str]]

    @property
    def median_count(self) -> float:
        return float(np.median(self.counts))

    def as_record(self, **extra: Any) -> dict[str, Any]:
        """The `calibration` entry written into the export settings."""
        return {
            "method": "median over images of the target-th highest attention at default scales",
            "target_median_features": self.target,
            "num_images": int(len(self.counts)),
            "median_features": self.median_count,
            "min_features": int(self.counts.min()),
            "max_features": int(self.counts.max()),
            **extra,
        }


def calibrate_export(
    model_path: str,
    records: Sequence[ImageRecord],
    target: int = 1000,
    write: bool = True,
    num_parallel_calls: int = 2,
) -> CalibrationResult:
    """Calibrates an export's attention threshold on sample images and records it.

    Args:
      model_path: delg-export SavedModel, or an official model (then `write` must be False).
      records: Sample images (loaded and resized as at extraction).
      target: Wanted median features per image.
      write: Write the threshold into the export's settings asset.
      num_parallel_calls: Parallel image decoders.

    Returns:
      `CalibrationResult`.
    """
    # An official model has no settings asset: the official DELG scales and image size then.
    options = ExtractionOptions.from_settings(
        settings_if_any(model_path), attention_threshold=_NO_THRESHOLD, max_feature_num=_ALL
    )
    extractor = SavedModelExtractor(model_path, options)
    if write and extractor.model_kind != DELG_TF:
        raise ValueError(
            f"{model_path} is an {extractor.model_kind} model, which has no settings asset to "
            "write the threshold into: calibrate it without writing (delg-calibrate-threshold "
            "--dry_run) and pass the threshold to delg-extract --attention_threshold"
        )
    scores, failures = [], []
    for index, image, _, error in image_dataset(
        records, options.max_image_size, num_parallel_calls
    ):
        record = records[int(index)]
        reason = error.numpy().decode()
        if reason:
            _LOG.warning("calibration: skipping %s", reason)
            failures.append((record.image_id, reason))
            continue
        scores.append(extractor.raw(image)["scores"].numpy().reshape(-1))
    if not scores:
        raise ValueError(f"calibration: none of the {len(records)} sample images could be read")
    threshold = choose_threshold(scores, target)
    result = CalibrationResult(
        threshold=threshold,
        target=target,
        # The cap the extraction will apply: the export's, or the official default.
        counts=feature_counts(
            scores,
            threshold,
            (extractor.settings.max_feature_num if extractor.settings else DEFAULT_MAX_FEATURE_NUM),
        ),
        failures=failures,
    )
    if threshold == 0.0:
        _LOG.warning(
            "calibration: the median image has fewer than %d locations at the default scales; "
            "threshold 0 keeps every location",
            target,
        )
    if write:
        set_attention_threshold(
            model_path,
            threshold,
            result.as_record(
                image_scales=options.image_scales, max_image_size=options.max_image_size
            ),
        )
    return result
