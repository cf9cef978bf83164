"""Extracting one part of a store of parts: the unit of work of a distributed extraction.

A part is an ordinary (format 1) feature store written by the existing crash-safe
`FeatureStoreWriter` with the existing extraction loop (`extract_into_store`), so the distributed
path has no copy of the extraction logic. A part whose manifest is complete is not redone: Beam's
retries of a bundle and a re-run of the whole command are idempotent, except that a complete part
is reopened when one of its recorded failures should be retried (its input changed: the rule of
the one-process path, `extractor.retryable_failures`). An unfinished part (a worker
killed mid-part) resumes after its last complete shard. On a remote filesystem (gs://...) the part
is written to a local temporary directory and then copied, its manifest last, so a reader never
sees a part whose manifest is complete before its arrays are.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from collections.abc import Callable
from typing import Any

from delg_tf.extraction import store_parts
from delg_tf.extraction.extractor import extract_into_store, retryable_failures
from delg_tf.extraction.feature_store import (
    MANIFEST_NAME,
    FeatureStoreWriter,
    RecordMismatchError,
)


@dataclasses.dataclass(frozen=True)
class PartJob:
    """Everything a worker needs to extract any part (small: it is shipped to every worker).

    Attributes:
      output_dir: The store of parts (local path or tf.io.gfile URL).
      record: The store's record (every part must match it).
      global_dim: D.
      local_dim: d.
      max_image_size: Longest side fed to the model.
      shard_size: Images per shard inside a part (the unit of crash safety within a part).
      num_decode_threads: Parallel image decoders in each worker.
    """

    output_dir: str
    record: dict[str, Any]
    global_dim: int
    local_dim: int
    max_image_size: int
    shard_size: int = 1000
    num_decode_threads: int = 2


def extract_part(job: PartJob, name: str, extractor: Callable) -> dict[str, Any]:
    """Extracts part `name` unless it is complete; returns its summary either way.

    Args:
      job: The run's `PartJob`.
      name: Part name ("part-00017"); its inputs are read from the store's plan.
      extractor: (image, scale_factors) -> (global [D], local features dict), e.g. a
        `SavedModelExtractor` built once per worker process.

    Returns:
      {"name", "num_images", "num_failures", "failures": [[id, reason], ...], "extracted"}
      ("extracted": images extracted by this call, 0 for a part that was already complete).

    Raises:
      RecordMismatchError: the part was written with another record.
    """
    part_dir = store_parts.join(job.output_dir, name)
    summary = store_parts.part_summary(part_dir)
    if summary is not None and summary["record"] != job.record:
        raise RecordMismatchError(f"{part_dir}: the part was extracted with another record")
    extracted = 0
    records = []
    if summary is None or summary["failure_states"]:
        records = store_parts.read_plan(job.output_dir, name)
    # A complete part is redone only for failures to retry; its stored images are kept.
    if summary is None or retryable_failures(summary["failure_states"], records):
        local = store_parts.is_local(job.output_dir)
        target = part_dir if local else tempfile.mkdtemp(prefix=f"delg-{name}-")
        try:
            if not local and summary is not None:
                _copy_part_down(part_dir, target)  # resumed in place of the finished part
            with FeatureStoreWriter(
                target, job.global_dim, job.local_dim, job.shard_size, record=job.record
            ) as writer:
                extracted = extract_into_store(
                    writer,
                    records,
                    extractor,
                    job.max_image_size,
                    job.num_decode_threads,
                    show_progress=False,
                ).extracted
            if not local:
                _copy_part(target, part_dir)
        finally:
            if not local:
                shutil.rmtree(target, ignore_errors=True)
        summary = store_parts.part_summary(part_dir)
    return {
        "name": name,
        "num_images": summary["num_images"],
        "num_failures": summary["num_failures"],
        "failures": summary["failures"],
        "extracted": extracted,
    }


def _copy_part(local_dir: str, part_dir: str) -> None:
    """Copies a finished local part to `part_dir` (tf.io.gfile), the manifest last."""
    import tensorflow as tf  # only for remote stores

    tf.io.gfile.makedirs(part_dir)
    names = sorted(n for n in os.listdir(local_dir) if not n.startswith("."))
    for name in [n for n in names if n != MANIFEST_NAME] + [MANIFEST_NAME]:
        tf.io.gfile.copy(
            os.path.join(local_dir, name), store_parts.join(part_dir, name), overwrite=True
        )


def _copy_part_down(part_dir: str, local_dir: str) -> None:
    """Copies a finished remote part into `local_dir`, to reopen it there."""
    import tensorflow as tf  # only for remote stores

    for name in tf.io.gfile.listdir(part_dir):
        tf.io.gfile.copy(
            store_parts.join(part_dir, name), os.path.join(local_dir, name), overwrite=True
        )
