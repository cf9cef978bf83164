"""Feature extraction driven by a SavedModel: images in, feature store out.

The model is used only through its official-compatible `serving_default` signature, with the
extraction settings read from the export's settings asset (flags may override them), so the same
code runs any export that has that signature. Decoding and resizing run in a tf.data pipeline
(parallel map + prefetch) that overlaps the network.

Resume: the feature store records every finished image (and every failure); a rerun skips them,
so a killed run continues where its last complete shard ended, without duplicates or losses.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf
import tqdm

from delg_tf.export.export_settings import (
    DEFAULT_GLOBAL_SCALES_IND,
    DEFAULT_IMAGE_SCALES,
    DEFAULT_MAX_FEATURE_NUM,
    DEFAULT_MAX_IMAGE_SIZE,
    ExportSettings,
    read_settings,
)
from delg_tf.export.postprocessing import (
    aggregate_global_descriptors,
    keypoint_locations,
    normalize_local_descriptors,
)
from delg_tf.extraction.feature_store import FeatureStoreWriter
from delg_tf.extraction.image_inputs import ImageLoadError, ImageRecord, load_image

_LOG = logging.getLogger(__name__)


@dataclasses.dataclass
class ExtractionOptions:
    """Per-run extraction settings (defaults: the export's settings asset).

    Attributes:
      image_scales: Pyramid scales for local features.
      global_scales_ind: Indices into image_scales for the global descriptor.
      attention_threshold: Absolute attention threshold.
      max_feature_num: Most local features per image.
      max_image_size: Longest image side fed to the model.
      global_aggregation: "sum" over scales (official) or "max" (Scale-GeM), from the export's
        `global_pooling` settings.
    """

    image_scales: list[float]
    global_scales_ind: list[int]
    attention_threshold: float
    max_feature_num: int
    max_image_size: int
    global_aggregation: str = "sum"

    @classmethod
    def from_settings(cls, settings: ExportSettings | None, **overrides) -> ExtractionOptions:
        """Options from an export's settings; `overrides` with value None are ignored.

        Args:
          settings: the export's settings asset, or None for a SavedModel that has none (not
            written by delg-export, with the same `serving_default` signature): the official
            DELG extraction defaults are used then, and `attention_threshold` must be given in
            `overrides` (it depends on the model).
          **overrides: field name -> value (None: keep the settings' value).

        Raises:
          ValueError: without an attention threshold, or with scale indices out of range.
        """
        if settings is None:
            values = {
                "image_scales": list(DEFAULT_IMAGE_SCALES),
                "global_scales_ind": list(DEFAULT_GLOBAL_SCALES_IND),
                "attention_threshold": None,
                "max_feature_num": DEFAULT_MAX_FEATURE_NUM,
                "max_image_size": DEFAULT_MAX_IMAGE_SIZE,
            }
        else:
            values = {
                "image_scales": list(settings.image_scales),
                "global_scales_ind": list(settings.global_scales_ind),
                "attention_threshold": settings.attention_threshold,
                "max_feature_num": settings.max_feature_num,
                "max_image_size": settings.max_image_size,
                "global_aggregation": (settings.global_pooling or {}).get(
                    "scale_aggregation", "sum"
                ),
            }
        values.update({k: v for k, v in overrides.items() if v is not None})
        if values["attention_threshold"] is None:
            raise ValueError(
                "the export has no attention_threshold: run delg-calibrate-threshold on it, or "
                "pass --attention_threshold"
                if settings is not None
                else "a SavedModel without delg-export's settings asset needs "
                "--attention_threshold (the other settings default to the official DELG "
                "extraction config)"
            )
        bad = [i for i in values["global_scales_ind"] if not 0 <= i < len(values["image_scales"])]
        if bad:
            raise ValueError(
                f"global_scales_ind {values['global_scales_ind']} must index image_scales "
                f"{values['image_scales']}"
            )
        return cls(**values)


class SavedModelExtractor:
    """Runs an export's `serving_default` on one image and post-processes like the official code.

    Args:
      model_path: SavedModel directory written by delg-export (or any export with the official
        DELG signature, given `options`).
      options: Extraction options; default: from the export's settings asset.
    """

    def __init__(self, model_path: str, options: ExtractionOptions | None = None):
        self.model_path = model_path
        self.settings = read_settings(model_path) if options is None else None
        self.options = options or ExtractionOptions.from_settings(self.settings)
        self._loaded = tf.saved_model.load(model_path)
        if "serving_default" not in self._loaded.signatures:
            raise ValueError(f"{model_path}: SavedModel has no serving_default signature")
        self._serving = self._loaded.signatures["serving_default"]
        self._scales = tf.constant(self.options.image_scales, tf.float32)
        self._global_ind = tf.constant(self.options.global_scales_ind, tf.int32)
        self._threshold = tf.constant(self.options.attention_threshold, tf.float32)
        self._max_num = tf.constant(self.options.max_feature_num, tf.int32)

    @property
    def loaded(self):
        """The loaded SavedModel (for its other signatures)."""
        return self._loaded

    def raw(self, image: np.ndarray | tf.Tensor) -> dict[str, tf.Tensor]:
        """The official outputs for one uint8 [H, W, 3] image (boxes, features, scales, ...)."""
        return self._serving(
            input_image=tf.convert_to_tensor(image, tf.uint8),
            input_scales=self._scales,
            input_max_feature_num=self._max_num,
            input_abs_thres=self._threshold,
            input_global_scales_ind=self._global_ind,
        )

    def __call__(
        self, image: np.ndarray | tf.Tensor, scale_factors: np.ndarray | tf.Tensor
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Features of one image, keypoints mapped back through its resize.

        Args:
          image: uint8 [h, w, 3] model input (already resized).
          scale_factors: float [2] (h / H, w / W) of that resize.

        Returns:
          (global descriptor float32 [D] unit norm, local features dict: locations [N, 2] (y, x)
          in original pixels, descriptors [N, d] unit norm, scales [N] (1 / pyramid scale),
          attention [N]).
        """
        out = self.raw(image)
        local = {
            "locations": keypoint_locations(out["boxes"], tf.cast(scale_factors, tf.float32)),
            "descriptors": normalize_local_descriptors(out["features"]),
            "scales": out["scales"],
            "attention": tf.reshape(out["scores"], [-1]),
        }
        global_descriptor = aggregate_global_descriptors(
            out["global_descriptors"], self.options.global_aggregation
        )
        return global_descriptor.numpy(), {k: v.numpy() for k, v in local.items()}

    @property
    def global_dim(self) -> int:
        """D, from the signature's static output shape."""
        return int(self._serving.structured_outputs["global_descriptors"].shape[-1])

    @property
    def local_dim(self) -> int:
        """d, from the signature's static output shape."""
        return int(self._serving.structured_outputs["features"].shape[-1])


def image_dataset(
    records: Sequence[ImageRecord], max_image_size: int, num_parallel_calls: int = 2
) -> tf.data.Dataset:
    """Decoded, cropped, resized images in record order, loaded ahead of the model.

    Yields:
      (index int64, image uint8 [h, w, 3], scale_factors float32 [2], error string): an image
      that cannot be loaded gives an empty image and the reason.
    """
    paths = list(records)

    def load(index):
        record = paths[int(index)]
        try:
            image, factors = load_image(record, max_image_size)
            return image, factors, b""
        except ImageLoadError as e:
            return np.zeros([0, 0, 3], np.uint8), np.ones(2, np.float32), str(e).encode()

    def tf_load(index):
        image, factors, error = tf.numpy_function(
            load, [index], [tf.uint8, tf.float32, tf.string], stateful=False
        )
        image.set_shape([None, None, 3])
        factors.set_shape([2])
        error.set_shape([])
        return index, image, factors, error

    dataset = tf.data.Dataset.range(len(paths))
    dataset = dataset.map(tf_load, num_parallel_calls=num_parallel_calls, deterministic=True)
    return dataset.prefetch(2)


@dataclasses.dataclass
class ExtractionSummary:
    """What a run did.

    Attributes:
      extracted: Images extracted in this run.
      skipped_done: Images already in the store (resume).
      failures: (image id, reason) of images that failed in this run.
      seconds: Wall time of the extraction loop.
    """

    extracted: int = 0
    skipped_done: int = 0
    failures: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    seconds: float = 0.0

    @property
    def images_per_second(self) -> float:
        return (self.extracted + len(self.failures)) / self.seconds if self.seconds else 0.0


def extract_to_store(
    records: Sequence[ImageRecord],
    extractor: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, dict[str, np.ndarray]]],
    output_dir: str,
    global_dim: int,
    local_dim: int,
    max_image_size: int,
    shard_size: int = 1000,
    num_parallel_calls: int = 2,
    show_progress: bool = True,
) -> ExtractionSummary:
    """Extracts every record not yet in the store at `output_dir`; resumes a killed run.

    Args:
      records: Images to extract (ids must be unique).
      extractor: (image, scale_factors) -> (global [D], local features dict).
      output_dir: Feature store directory (created, or resumed).
      global_dim: D.
      local_dim: d.
      max_image_size: Longest side fed to the model.
      shard_size: Images per store shard (the unit of crash safety).
      num_parallel_calls: Parallel image decoders.
      show_progress: Show a tqdm bar with images/s.

    Returns:
      `ExtractionSummary`. The store is marked complete when every record is done.
    """
    summary = ExtractionSummary()
    with FeatureStoreWriter(output_dir, global_dim, local_dim, shard_size=shard_size) as writer:
        done = writer.done_ids()
        todo = [r for r in records if r.image_id not in done]
        summary.skipped_done = len(records) - len(todo)
        if summary.skipped_done:
            _LOG.info("%s: resuming, %d images already done", output_dir, summary.skipped_done)
        start = time.perf_counter()
        bar = tqdm.tqdm(total=len(todo), unit="img", disable=not show_progress, smoothing=0.1)
        for index, image, factors, error in image_dataset(todo, max_image_size, num_parallel_calls):
            record = todo[int(index)]
            reason = error.numpy().decode()
            if not reason:
                try:
                    global_desc, local = extractor(image, factors)
                except (tf.errors.OpError, ValueError) as e:
                    message = e.message if isinstance(e, tf.errors.OpError) else str(e)
                    reason = f"{record.path}: model failed: {type(e).__name__}: {message}"
            if reason:
                _LOG.warning("skipping %s", reason)
                writer.add_failure(record.image_id, reason)
                summary.failures.append((record.image_id, reason))
            else:
                writer.add(record.image_id, global_desc, local)
                summary.extracted += 1
            bar.update(1)
        bar.close()
        summary.seconds = time.perf_counter() - start
    return summary
