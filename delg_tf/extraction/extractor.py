"""Feature extraction driven by a SavedModel: images in, feature store out.

The model is called only with the official DELG inputs and outputs (`model_loading`), so the same
code runs our exports, official TF2 exports and the released TF1 models. The extraction settings
come from our export's settings asset, or for an official model from flags or its official
config (`official_config`); flags override either. Decoding and resizing run in a tf.data pipeline
(parallel map + prefetch) that overlaps the network.

Resume: the feature store records every finished image (and every failure); a rerun skips them,
so a killed run continues where its last complete shard ended, without duplicates or losses. A
recorded failure is retried when its input changed since (a file added to the folder, a corrupt
file replaced) or when the model, not the file, failed; an unchanged input is not decoded again.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping, Sequence

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
    settings_path,
)
from delg_tf.export.postprocessing import (
    aggregate_global_descriptors,
    keypoint_locations,
    normalize_local_descriptors,
)
from delg_tf.extraction.feature_store import FeatureStoreWriter
from delg_tf.extraction.image_inputs import ImageLoadError, ImageRecord, load_image, record_state
from delg_tf.extraction.model_loading import DELG_TF, DelgSavedModel

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
                "--attention_threshold or --official_config (the other settings default to the "
                "official DELG extraction config)"
            )
        bad = [i for i in values["global_scales_ind"] if not 0 <= i < len(values["image_scales"])]
        if bad:
            raise ValueError(
                f"global_scales_ind {values['global_scales_ind']} must index image_scales "
                f"{values['image_scales']}"
            )
        return cls(**values)


def settings_if_any(model_path: str) -> ExportSettings | None:
    """The export's settings asset, or None for a SavedModel without one (an official model).

    Raises:
      ValueError: for a malformed settings file.
    """
    return read_settings(model_path) if tf.io.gfile.exists(settings_path(model_path)) else None


class SavedModelExtractor:
    """Runs a DELG SavedModel on one image and post-processes like the official extractor.

    The model may be a delg-export export, an official TF2 export or a released TF1 model
    (`model_loading`); `model_kind` says which. Every kind returns the official raw outputs, and
    the post-processing is the official one for all: keypoints at the box centres mapped back
    through the resize, L2-normalised local descriptors, and the global descriptor L2-normalised
    per scale, summed and L2-normalised again (`research/delf/delf/python/examples/extractor.py`).

    Args:
      model_path: SavedModel directory.
      options: Extraction options; default: from the export's settings asset (an official model
        has none, so it needs `options` with an attention threshold).

    Raises:
      ValueError: not a DELG SavedModel (naming what is missing), or no attention threshold.
    """

    def __init__(self, model_path: str, options: ExtractionOptions | None = None):
        self.model_path = model_path
        self._model = DelgSavedModel(model_path)
        self.settings = read_settings(model_path) if self._model.kind == DELG_TF else None
        self.options = options or ExtractionOptions.from_settings(self.settings)
        self._scales = tf.constant(self.options.image_scales, tf.float32)
        self._global_ind = tf.constant(self.options.global_scales_ind, tf.int32)
        self._threshold = tf.constant(self.options.attention_threshold, tf.float32)
        self._max_num = tf.constant(self.options.max_feature_num, tf.int32)

    @property
    def model_kind(self) -> str:
        """ "delg_tf", "official_tf2" or "official_tf1" (`model_loading.MODEL_KINDS`)."""
        return self._model.kind

    @property
    def loaded(self):
        """The loaded SavedModel (for a delg_tf export's other signatures)."""
        return self._model.loaded

    def raw(self, image: np.ndarray | tf.Tensor) -> dict[str, tf.Tensor]:
        """The official outputs for one uint8 [H, W, 3] image (boxes, features, scales, ...)."""
        return self._model(image, self._scales, self._max_num, self._threshold, self._global_ind)

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
            "locations": keypoint_locations(
                tf.cast(out["boxes"], tf.float32), tf.cast(scale_factors, tf.float32)
            ),
            "descriptors": normalize_local_descriptors(tf.cast(out["features"], tf.float32)),
            "scales": tf.cast(tf.reshape(out["scales"], [-1]), tf.float32),
            "attention": tf.cast(tf.reshape(out["scores"], [-1]), tf.float32),
        }
        global_descriptor = aggregate_global_descriptors(
            tf.cast(out["global_descriptors"], tf.float32), self.options.global_aggregation
        )
        return global_descriptor.numpy(), {k: v.numpy() for k, v in local.items()}

    def attention_map(self, image: np.ndarray, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """The full attention map of one image at one scale, with its cells' boxes.

        A delg_tf export has a signature for it. An official model returns only selected
        features, so it is asked for every location (threshold -inf, no cap, one scale) and the
        map is rebuilt from the boxes' centres.

        Args:
          image: uint8 [H, W, 3].
          scale: Pyramid scale.

        Returns:
          (attention float32 [h, w], boxes float32 [h * w, 4] (ymin, xmin, ymax, xmax) of its
          cells in image pixels, row-major).
        """
        signatures = self.loaded.signatures
        if self.model_kind == DELG_TF and "extract_attention_map" in signatures:
            out = signatures["extract_attention_map"](
                input_image=tf.constant(image), input_scale=tf.constant(scale, tf.float32)
            )
            return out["attention"].numpy(), out["boxes"].numpy()
        out = self._model(
            image,
            tf.constant([scale], tf.float32),
            tf.constant(np.iinfo(np.int32).max),
            tf.constant(float("-inf")),
            tf.constant([0]),
        )
        boxes = out["boxes"].numpy().astype(np.float32)
        scores = out["scores"].numpy().reshape(-1).astype(np.float32)
        centres = keypoint_locations(tf.constant(boxes)).numpy()
        rows, cols = np.unique(centres[:, 0]), np.unique(centres[:, 1])
        if len(rows) * len(cols) != len(boxes):
            raise ValueError(
                f"{self.model_path}: {len(boxes)} locations do not form a grid "
                f"({len(rows)} rows x {len(cols)} columns)"
            )
        order = np.lexsort((centres[:, 1], centres[:, 0]))  # row-major
        return scores[order].reshape(len(rows), len(cols)), boxes[order]

    @property
    def global_dim(self) -> int:
        """D, from the model's static output shape (or one tiny probe run)."""
        return self._model.global_dim

    @property
    def local_dim(self) -> int:
        """d, from the model's static output shape (or one tiny probe run)."""
        return self._model.local_dim


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
      retried: Recorded failures tried again in this run (their input changed).
    """

    extracted: int = 0
    skipped_done: int = 0
    failures: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    seconds: float = 0.0
    retried: int = 0

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
    record: dict | None = None,
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
      record: The store's record (`store_record.extraction_record`); a resume with another one
        is refused (`RecordMismatchError`) before anything is written.

    Returns:
      `ExtractionSummary`. The store is marked complete when every record is done.
    """
    with FeatureStoreWriter(
        output_dir, global_dim, local_dim, shard_size=shard_size, record=record
    ) as writer:
        return extract_into_store(
            writer, records, extractor, max_image_size, num_parallel_calls, show_progress
        )


def extract_into_store(
    writer: FeatureStoreWriter,
    records: Sequence[ImageRecord],
    extractor: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, dict[str, np.ndarray]]],
    max_image_size: int,
    num_parallel_calls: int = 2,
    show_progress: bool = True,
) -> ExtractionSummary:
    """Extracts every record not yet in an open store writer: THE extraction loop.

    Both the in-process binary and each Apache Beam worker (one part each) run this function, so
    the two paths cannot drift apart.

    Args:
      writer: An open `FeatureStoreWriter` (the caller closes it, which marks it complete).
      records: Images to extract, in store order (ids must be unique).
      extractor: (image, scale_factors) -> (global [D], local features dict).
      max_image_size: Longest side fed to the model.
      num_parallel_calls: Parallel image decoders.
      show_progress: Show a tqdm bar with images/s.

    Returns:
      `ExtractionSummary` of this call.
    """
    summary = ExtractionSummary()
    output_dir = writer.output_dir
    done = writer.done_ids()
    stored_states = {i: state for i, (_, state) in writer.recorded_failures().items()}
    retry = retryable_failures(stored_states, records)
    for image_id in retry:
        writer.retry(image_id)
    summary.retried = len(retry)
    if retry:
        _LOG.info("%s: retrying %d failed images whose input changed", output_dir, len(retry))
    todo = [r for r in records if r.image_id not in done or r.image_id in retry]
    summary.skipped_done = len(records) - len(todo)
    if summary.skipped_done:
        _LOG.info("%s: resuming, %d images already done", output_dir, summary.skipped_done)
    start = time.perf_counter()
    bar = tqdm.tqdm(total=len(todo), unit="img", disable=not show_progress, smoothing=0.1)
    for index, image, factors, error in image_dataset(todo, max_image_size, num_parallel_calls):
        record = todo[int(index)]
        reason = error.numpy().decode()
        # Hashed now, not before the decode: only failures pay for it.
        state = record_state(record) if reason else None
        if not reason:
            try:
                global_desc, local = extractor(image, factors)
            except (tf.errors.OpError, ValueError) as e:
                message = e.message if isinstance(e, tf.errors.OpError) else str(e)
                reason = f"{record.path}: model failed: {type(e).__name__}: {message}"
                state = None  # the model failed, not the file (e.g. out of memory): retried
        if reason:
            _LOG.warning("skipping %s", reason)
            writer.add_failure(record.image_id, reason, state)
            summary.failures.append((record.image_id, reason))
        else:
            writer.add(record.image_id, global_desc, local)
            summary.extracted += 1
        bar.update(1)
    bar.close()
    summary.seconds = time.perf_counter() - start
    return summary


def retryable_failures(
    stored_states: Mapping[str, str | None], records: Sequence[ImageRecord]
) -> set[str]:
    """Ids of `records` recorded as failed whose input changed since (or whose model failed).

    Args:
      stored_states: id -> input state recorded with its failure (None: a model failure).
      records: the run's images.

    A failure with an unchanged input is permanent for these bytes and these settings (a resume
    with other feature-changing settings is refused by the store's record), so it is kept and
    reported, not decoded again. Checking costs one stat and one hash per recorded failure.
    """
    retry = set()
    for record in records:
        if record.image_id in stored_states:
            stored_state = stored_states[record.image_id]
            if stored_state is None or record_state(record) != stored_state:
                retry.add(record.image_id)
    return retry
