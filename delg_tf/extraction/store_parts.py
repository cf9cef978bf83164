"""A feature store made of parts: the layout that distributed extraction (Apache Beam) writes.

Layout (manifest format_version 2):

  manifest.json       {"format": "delg-feature-store", "format_version": 2, "layout": "parts",
                       "global_dim", "local_dim", "global_dtype", "record": {...},
                       "num_records": N, "images_per_part": n, "complete": bool,
                       "num_images": int, "num_failures": int, "failures": [[id, reason], ...],
                       "parts": [{"name": "part-00000", "num_records": n,
                                  "num_images": int, "num_failures": int}, ...]}
  plan/part-00000.json  {"records": [[image_id, path, bbox or null, root or null], ...]}: the
                      part's inputs (root: the image folder a path must stay inside)
  part-00000/         a format-1 store written by `FeatureStoreWriter` (its own manifest, shards,
                      lock and record), complete when its manifest says so

The split is deterministic: part k holds records [k * n, (k + 1) * n) of the input order, so a
re-run (or a Beam retry) rebuilds the same parts, and reading the parts in order gives the ids in
the same order as a one-process store. The top-level manifest is written by the launcher before
the pipeline runs (parts listed, complete=False) and rewritten by the pipeline's last step with
every part's counts and failures; a reader opens the parts whose own manifest is complete and
reports the others as missing. All I/O here goes through tf.io.gfile, so the store may live on
gs:// (workers then write each part locally and copy it, its manifest last).
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
from collections.abc import Mapping, Sequence
from typing import Any

from delg_tf.common.atomic_files import write_gfile_text_atomically
from delg_tf.extraction.feature_store import (
    FORMAT_NAME,
    MANIFEST_NAME,
    PARTS_FORMAT_VERSION,
    FeatureStoreError,
    check_record,
    outstanding_failures,
)
from delg_tf.extraction.image_inputs import ImageRecord

PLAN_DIR = "plan"


def _gfile():
    # Imported here, so that planning and tests of the layout do not pay TensorFlow's import.
    import tensorflow as tf

    return tf.io.gfile


def join(path: str, *names: str) -> str:
    """Joins a store path (local or `scheme://`) with names."""
    return posixpath.join(path, *names) if "://" in path else os.path.join(path, *names)


def is_local(path: str) -> bool:
    """True for a local path (no `scheme://`): parts are then written in place."""
    return "://" not in path


def part_name(index: int) -> str:
    return f"part-{index:05d}"


def split_into_parts(
    records: Sequence[ImageRecord], images_per_part: int
) -> list[tuple[str, list[ImageRecord]]]:
    """Consecutive runs of `images_per_part` records: [(part name, records), ...]."""
    if images_per_part < 1:
        raise ValueError(f"--images_per_part must be >= 1, got {images_per_part}")
    return [
        (part_name(k), list(records[start : start + images_per_part]))
        for k, start in enumerate(range(0, len(records), images_per_part))
    ]


def records_digest(records: Sequence[ImageRecord]) -> str:
    """SHA-256 of the ordered ids and query boxes: which images, in which parts."""
    payload = json.dumps([[r.image_id, r.bbox] for r in records]).encode()
    return hashlib.sha256(payload).hexdigest()


def read_json(path: str) -> Any:
    with _gfile().GFile(path, "r") as f:
        return json.loads(f.read())


def write_json(path: str, value: Any) -> None:
    """Writes `value` as JSON to `path` atomically (`write_gfile_text_atomically`)."""
    write_gfile_text_atomically(path, json.dumps(value))


def write_plan(output_dir: str, parts: Sequence[tuple[str, Sequence[ImageRecord]]]) -> None:
    """One plan file per part, read by the worker that extracts it."""
    _gfile().makedirs(join(output_dir, PLAN_DIR))
    for name, records in parts:
        write_json(
            join(output_dir, PLAN_DIR, f"{name}.json"),
            {"records": [[r.image_id, r.path, r.bbox, r.root] for r in records]},
        )


def read_plan(output_dir: str, name: str) -> list[ImageRecord]:
    payload = read_json(join(output_dir, PLAN_DIR, f"{name}.json"))
    # The root keeps the symlink rule on the workers; a plan written before it had none.
    return [
        ImageRecord(entry[0], entry[1], None if entry[2] is None else tuple(entry[2]), *entry[3:])
        for entry in payload["records"]
    ]


def open_parts_manifest(
    output_dir: str,
    parts: Sequence[tuple[str, Sequence[ImageRecord]]],
    record: Mapping[str, Any],
    global_dim: int | None,
    local_dim: int | None,
    images_per_part: int,
    global_dtype: str = "float32",
) -> dict:
    """Creates the top-level manifest of a new store of parts, or checks a resumed one's record.

    Raises:
      RecordMismatchError: a resume with another export, setting, image list or part size.
      FeatureStoreError: `output_dir` holds a one-process (format 1) store.
    """
    gfile = _gfile()
    path = join(output_dir, MANIFEST_NAME)
    if gfile.exists(path):
        manifest = read_json(path)
        if manifest.get("format") != FORMAT_NAME:
            raise FeatureStoreError(f"{path}: not a {FORMAT_NAME} manifest")
        if manifest.get("format_version") != PARTS_FORMAT_VERSION:
            raise FeatureStoreError(
                f"{output_dir}: holds a store written without --runner (format_version "
                f"{manifest.get('format_version')}); --runner writes a store of parts: use a new "
                "--output_features_dir"
            )
        check_record(path, manifest, record)
        return manifest
    gfile.makedirs(output_dir)
    manifest = {
        "format": FORMAT_NAME,
        "format_version": PARTS_FORMAT_VERSION,
        "layout": "parts",
        "global_dim": global_dim,
        "local_dim": local_dim,
        "global_dtype": global_dtype,
        "record": dict(record),
        "num_records": sum(len(r) for _, r in parts),
        "images_per_part": images_per_part,
        "complete": False,
        "num_images": 0,
        "num_failures": 0,
        "failures": [],
        "parts": [{"name": name, "num_records": len(r)} for name, r in parts],
    }
    write_json(path, manifest)
    return manifest


def part_summary(part_dir: str) -> dict | None:
    """The counts and outstanding failures of a complete part, or None if it is unfinished.

    Returns:
      {"num_images", "num_failures", "failures": [[id, reason], ...], "failure_states":
      {id: input state or None}, "record"}.
    """
    gfile = _gfile()
    path = join(part_dir, MANIFEST_NAME)
    if not gfile.exists(path):
        return None
    manifest = read_json(path)
    if not manifest.get("complete"):
        return None
    payloads = []
    for shard in manifest["shards"]:
        ids_file = read_json(join(part_dir, f"{shard['name']}.ids.json"))
        payloads.append((ids_file["ids"], ids_file["failures"]))
    failed = outstanding_failures(payloads)
    return {
        "num_images": manifest["num_images"],
        "num_failures": len(failed),
        "failures": [[image_id, reason] for image_id, (reason, _) in failed.items()],
        "failure_states": {image_id: state for image_id, (_, state) in failed.items()},
        "record": manifest.get("record"),
    }


def finish_parts_manifest(output_dir: str, summaries: Sequence[Mapping[str, Any]]) -> dict:
    """The pipeline's last step: every part's counts and failures into the top-level manifest.

    Args:
      output_dir: the store.
      summaries: one {"name", "num_images", "num_failures", "failures"} per finished part.

    Returns:
      The manifest written; complete iff every planned part is finished.
    """
    path = join(output_dir, MANIFEST_NAME)
    manifest = read_json(path)
    by_name = {s["name"]: s for s in summaries}
    failures: list[list[str]] = []
    for part in manifest["parts"]:
        summary = by_name.get(part["name"])
        part.pop("num_images", None)
        part.pop("num_failures", None)
        if summary is not None:
            part["num_images"] = summary["num_images"]
            part["num_failures"] = summary["num_failures"]
            failures.extend(summary["failures"])
    manifest["failures"] = failures
    manifest["num_failures"] = len(failures)
    manifest["num_images"] = sum(p.get("num_images", 0) for p in manifest["parts"])
    manifest["complete"] = all(p["name"] in by_name for p in manifest["parts"])
    write_json(path, manifest)
    return manifest
