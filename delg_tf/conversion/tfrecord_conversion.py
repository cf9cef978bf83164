"""Writes planned splits of images to sharded TFRecord files, resumably.

The caller plans the splits (which image goes to which split, already shuffled); this module:
- cuts each split into `num_shards` contiguous shards as the official tool does
  (`np.linspace(0, n, num_shards + 1)` boundaries), named `<split>-%05d-of-%05d`;
- decodes, validates and converts images in a pool of "spawn" worker processes (Pillow only) and
  writes the records in this process with `tf.io.TFRecordWriter`, in plan order, so a shard's
  bytes depend only on the plan and the images, never on worker scheduling;
- writes each shard to `<name>.tmp`, syncs it, renames it, then lists it (record count, size,
  sha256, skipped inputs, conversions) in `manifest.json`, which is replaced atomically;
- on a rerun with the same identity (flags + plan digest + image library versions), reuses every
  listed shard whose file still matches its size and sha256 and redoes the rest; with a
  different identity it refuses (`ResumeMismatchError`) unless `overwrite` is set;
- keeps with each skipped image the state of its file (`common/input_state.py`); a rerun rewrites
  a listed shard when a skipped image's file changed since (replaced, made readable, created),
  the retry rule of `delg-extract`, and keeps it when every skipped file is unchanged;
- writes `bad_inputs.csv` (`id,path,reason`) and the summary at the end.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import logging
import multiprocessing
import os
import re
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import PIL
from PIL import features as pil_features

from delg_tf.common.atomic_files import fsync_file, write_text_atomically
from delg_tf.common.input_state import input_state
from delg_tf.conversion import manifest as manifest_lib
from delg_tf.conversion import worker as conversion_worker
from delg_tf.conversion.bad_inputs import BadInput, reason_category, write_bad_inputs_csv
from delg_tf.data.relabeling import RELABELING_FILE

BAD_INPUTS_NAME = "bad_inputs.csv"
SPLIT_NAMES = ("validation", "train", "test")
_SHARD_RE = re.compile(r"^(train|validation|test)-\d{5}-of-\d{5}$")
# Far above any real decode time (Pillow refuses images above ~179 Mpx).
_IMAGE_TIMEOUT_SECONDS = 600
_OWN_NAMES = (manifest_lib.MANIFEST_NAME, BAD_INPUTS_NAME, RELABELING_FILE)
# Reasons that come from the worker, not the file: retried on every rerun (state None).
_TRANSIENT_REASONS = ("worker crashed", "out of memory")


class ResumeMismatchError(ValueError):
    """The output directory holds a conversion made with different flags or inputs."""


class OutputDirectoryError(ValueError):
    """The output directory holds files this tool will not overwrite without `overwrite`."""


@dataclasses.dataclass(frozen=True)
class ConversionItem:
    """One planned record: `label` is None for test images."""

    image_id: str
    path: str
    label: int | None


@dataclasses.dataclass(frozen=True)
class ConversionOptions:
    """How to convert (none of these change the output bytes except the first three).

    Attributes:
      num_shards: shards per split.
      min_image_size: smallest accepted image side in pixels.
      jpeg_quality: quality of re-encoded (non RGB JPEG) images.
      num_workers: worker processes; 0 converts in this process.
      overwrite: delete this tool's previous outputs instead of resuming or refusing.
      show_progress: draw a tqdm progress bar on stderr.
    """

    num_shards: int
    min_image_size: int
    jpeg_quality: int
    num_workers: int
    overwrite: bool = False
    show_progress: bool = True


def shard_name(split: str, shard: int, num_shards: int) -> str:
    """`train-00003-of-00128`, the official file name."""
    return f"{split}-{shard:05d}-of-{num_shards:05d}"


def shard_bounds(num_items: int, num_shards: int) -> list[tuple[int, int]]:
    """`[(start, end)]` per shard: the official `np.linspace(0, n, num_shards + 1)` cut."""
    edges = np.linspace(0, num_items, num_shards + 1).astype(np.int64)
    return [(int(edges[i]), int(edges[i + 1])) for i in range(num_shards)]


def plan_digest(splits: Mapping[str, Sequence[ConversionItem]]) -> str:
    """sha256 of the full plan (split, order, id, path, label): the inputs a resume must match."""
    digest = hashlib.sha256()
    for split in sorted(splits):
        for item in splits[split]:
            line = json.dumps([split, item.image_id, item.path, item.label])
            digest.update(line.encode("utf-8") + b"\n")
    return digest.hexdigest()


def _environment_identity() -> dict[str, Any]:
    # Re-encoded JPEG bytes depend on the encoder build; a resume must use the same one.
    return {
        "pillow_version": PIL.__version__,
        "libjpeg_turbo_version": pil_features.version("libjpeg_turbo"),
    }


def _is_own_file(name: str) -> bool:
    if name in _OWN_NAMES or _SHARD_RE.match(name):
        return True
    if name.endswith(".tmp"):
        stem = name[: -len(".tmp")]
        if _SHARD_RE.match(stem):
            return True
        # Temporary files of atomic writes: ".<own name>.<random>.tmp".
        return any(name.startswith("." + own + ".") for own in _OWN_NAMES)
    return False


def _remove_stale_temporaries(directory: str) -> None:
    for name in os.listdir(directory):
        if name.endswith(".tmp") and _is_own_file(name):
            os.unlink(os.path.join(directory, name))


def _remove_own_outputs(directory: str) -> None:
    # The manifest goes last: a run killed half way through this still has a manifest (whose
    # identity differs), not shards that look foreign.
    names = sorted(n for n in os.listdir(directory) if _is_own_file(n))
    names.sort(key=lambda n: n == manifest_lib.MANIFEST_NAME)
    for name in names:
        os.unlink(os.path.join(directory, name))


def _check_output_directory(
    directory: str, identity: dict[str, Any], overwrite: bool
) -> dict[str, Any] | None:
    """Returns the manifest to resume from, None to start fresh; raises when it must refuse."""
    path = os.path.join(directory, manifest_lib.MANIFEST_NAME)
    if overwrite:
        _remove_own_outputs(directory)
        return None
    try:
        manifest = manifest_lib.load_manifest(path)
    except manifest_lib.ManifestError as error:
        raise OutputDirectoryError(f"{error}; pass --overwrite to start over") from error
    if manifest is None:
        shards = sorted(n for n in os.listdir(directory) if _SHARD_RE.match(n))
        if shards:
            raise OutputDirectoryError(
                f"{directory} already holds TFRecord shards ({shards[0]}, ...) but no "
                f"{manifest_lib.MANIFEST_NAME}; they were not written by this tool. "
                "Pass --overwrite to replace them or choose another --output_directory"
            )
        return None
    differences = manifest_lib.identity_differences(manifest["identity"], identity)
    if any(line.startswith("plan_sha256:") for line in differences):
        # E.g. an image missing when the run was planned has been added: it changes the
        # splits, the shard boundaries and the labels, so the output cannot grow in place.
        differences.append(
            "(the planned images changed: a missing image was added, or the CSV or the folder "
            "changed)"
        )
    if differences:
        raise ResumeMismatchError(
            f"{path} was written with different flags or inputs, so it cannot be resumed:\n  "
            + "\n  ".join(differences)
            + "\nRerun with the original flags, or pass --overwrite to start over"
        )
    return manifest


def _reusable_shards(
    directory: str, previous: dict[str, Any] | None, split: str
) -> dict[str, dict[str, Any]]:
    """Shards listed in the previous manifest whose files still match size and sha256, and
    whose skipped images are unchanged (a skipped image fixed since is picked up)."""
    if previous is None:
        return {}
    reusable = {}
    for name, entry in previous.get("splits", {}).get(split, {}).get("shards", {}).items():
        path = os.path.join(directory, name)
        changed = _changed_bad_inputs(entry)
        if changed:
            logging.info(
                "Shard %s: %d skipped images changed since (e.g. %s); writing it again",
                name,
                len(changed),
                changed[0],
            )
        elif (
            os.path.isfile(path)
            and os.path.getsize(path) == entry["bytes"]
            and manifest_lib.sha256_of_file(path) == entry["sha256"]
        ):
            reusable[name] = entry
            logging.info("Reusing verified shard %s (%d records)", name, entry["records"])
        else:
            logging.warning("Shard %s does not match the manifest; writing it again", name)
    return reusable


def _bad_input_state(path: str, reason: str) -> str | None:
    return None if reason.startswith(_TRANSIENT_REASONS) else input_state(path)


def _changed_bad_inputs(entry: Mapping[str, Any]) -> list[str]:
    """Paths of a listed shard's skipped images to retry: their file changed, or the failure
    was the worker's (a manifest without states, from an older version, retries them all)."""
    states = entry.get("bad_input_states", [])
    rows = entry["bad_inputs"]
    if len(states) != len(rows):
        return [path for _, path, _ in rows]
    return [
        path
        for (_, path, reason), state in zip(rows, states, strict=True)
        if state is None or _bad_input_state(path, reason) != state
    ]


class _Converter:
    """Yields worker results in plan order, with a bounded number of images in flight."""

    def __init__(self, options: ConversionOptions):
        self._options = options
        self._pool = None
        if options.num_workers > 0:
            context = multiprocessing.get_context("spawn")
            self._pool = context.Pool(
                options.num_workers,
                initializer=conversion_worker.init_worker,
                initargs=(os.getpid(),),
            )
        self._window = max(64, 32 * max(1, options.num_workers))

    def results(self, paths: Sequence[str]):
        args = (self._options.min_image_size, self._options.jpeg_quality)
        if self._pool is None:
            for path in paths:
                yield conversion_worker.convert_one(path, *args)
            return
        pending = collections.deque()
        next_index = 0
        while next_index < len(paths) or pending:
            while next_index < len(paths) and len(pending) < self._window:
                pending.append(
                    self._pool.apply_async(
                        conversion_worker.convert_one, (paths[next_index], *args)
                    )
                )
                next_index += 1
            try:
                yield pending.popleft().get(timeout=_IMAGE_TIMEOUT_SECONDS)
            except multiprocessing.TimeoutError:
                # A worker that crashes (e.g. a decoder segfault) is replaced by the pool but its
                # task never returns; skip that image rather than wait forever.
                yield f"worker crashed or timed out (no result after {_IMAGE_TIMEOUT_SECONDS} s)"

    def close(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()


def _write_shard(
    directory: str,
    name: str,
    items: Sequence[ConversionItem],
    results,
    progress,
) -> dict[str, Any]:
    """Writes one shard via a temporary file; returns its manifest entry."""
    import tensorflow as tf  # Only the parent process writes records.

    from delg_tf.data.example_schema import make_example

    final_path = os.path.join(directory, name)
    tmp_path = final_path + ".tmp"
    records = 0
    bad_inputs = []
    conversions: collections.Counter[str] = collections.Counter()
    with tf.io.TFRecordWriter(tmp_path) as writer:
        for item in items:
            result = next(results)
            progress.update(1)
            if isinstance(result, str):
                bad_inputs.append([item.image_id, item.path, result])
                continue
            jpeg, height, width, conversion = result
            if conversion is not None:
                conversions[conversion] += 1
            example = make_example(item.image_id, jpeg, height, width, item.label)
            # deterministic=True: map fields are serialized in sorted key order, so the bytes do
            # not depend on the process's hash seed.
            writer.write(example.SerializeToString(deterministic=True))
            records += 1
    fsync_file(tmp_path)
    os.replace(tmp_path, final_path)
    return {
        "records": records,
        "bytes": os.path.getsize(final_path),
        "sha256": manifest_lib.sha256_of_file(final_path),
        "conversions": dict(sorted(conversions.items())),
        "bad_inputs": bad_inputs,
        "bad_input_states": [_bad_input_state(path, reason) for _, path, reason in bad_inputs],
    }


def _make_progress(total: int, enabled: bool):
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm is a dependency; keep working without a bar if it is missing.
        enabled = False
    if not enabled:

        class _NoProgress:
            def update(self, n):
                pass

            def close(self):
                pass

        return _NoProgress()
    return tqdm(total=total, unit="img", file=sys.stderr, mininterval=1.0, smoothing=0.05)


def _summarize(
    manifest: dict[str, Any],
    planning_bad_inputs: Sequence[BadInput],
    shards_written: int,
    shards_reused: int,
    images_processed: int,
    seconds: float,
) -> tuple[dict[str, Any], list[BadInput]]:
    all_bad = list(planning_bad_inputs)
    conversions: collections.Counter[str] = collections.Counter()
    records = {}
    for split in SPLIT_NAMES:
        if split not in manifest["splits"]:
            continue
        shards = manifest["splits"][split]["shards"]
        records[split] = sum(entry["records"] for entry in shards.values())
        for name in sorted(shards):
            conversions.update(shards[name]["conversions"])
            all_bad.extend(BadInput(*row) for row in shards[name]["bad_inputs"])
    by_reason = collections.Counter(reason_category(bad.reason) for bad in all_bad)
    summary = {
        "records": records,
        "converted_to_rgb_jpeg": sum(conversions.values()),
        "conversions": dict(sorted(conversions.items())),
        "bad_inputs": len(all_bad),
        "bad_inputs_by_reason": dict(sorted(by_reason.items())),
        "shards_written": shards_written,
        "shards_reused": shards_reused,
        "images_processed_this_run": images_processed,
        "seconds_this_run": round(seconds, 3),
        "images_per_second_this_run": round(images_processed / seconds, 1) if seconds else 0.0,
    }
    return summary, all_bad


def convert_to_tfrecords(
    splits: Mapping[str, Sequence[ConversionItem]],
    output_directory: str,
    options: ConversionOptions,
    identity: Mapping[str, Any],
    planning_bad_inputs: Sequence[BadInput] = (),
    side_files: Mapping[str, str] | None = None,
    plan_summary: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], list[BadInput]]:
    """Converts the planned splits to TFRecord shards in `output_directory`, resuming if possible.

    Args:
      splits: split name ("validation", "train" or "test") -> items in the order to write them.
      output_directory: where shards, manifest.json and bad_inputs.csv go (created if needed).
      options: shard count, image checks, workers, overwrite.
      identity: the flags that define the output (JSON-serializable); stored in the manifest and
        compared on resume, together with the plan digest and `options`' output-defining fields.
      planning_bad_inputs: inputs already rejected while planning (CSV rows, missing files, ...);
        written to bad_inputs.csv first.
      side_files: extra text files to write atomically once the directory is accepted
        (for example {"relabeling.csv": ...}).
      plan_summary: facts from planning (class counts, ...) added to the summary.

    Returns:
      (summary dict, every bad input of the whole conversion, including resumed shards).

    Raises:
      ResumeMismatchError: a previous manifest has a different identity and not `overwrite`.
      OutputDirectoryError: the directory holds shards of unknown origin or a broken manifest.
    """
    unknown = set(splits) - set(SPLIT_NAMES)
    if unknown:
        raise ValueError(f"unknown split names {sorted(unknown)}; expected {SPLIT_NAMES}")
    if options.num_shards < 1:
        raise ValueError(f"num_shards must be >= 1, got {options.num_shards}")
    os.makedirs(output_directory, exist_ok=True)
    full_identity = dict(identity)
    full_identity.update(
        num_shards=options.num_shards,
        min_image_size=options.min_image_size,
        jpeg_quality=options.jpeg_quality,
        plan_sha256=plan_digest(splits),
        **_environment_identity(),
    )
    previous = _check_output_directory(output_directory, full_identity, options.overwrite)
    # TensorFlow (~3 s) only once the directory is accepted, and before the clock and the pool.
    import tensorflow as tf  # noqa: F401

    start = time.monotonic()
    _remove_stale_temporaries(output_directory)
    for name, text in (side_files or {}).items():
        write_text_atomically(os.path.join(output_directory, name), text)

    manifest_path = os.path.join(output_directory, manifest_lib.MANIFEST_NAME)
    manifest = manifest_lib.new_manifest(full_identity)
    work = []  # (name, items) of shards to write, in order.
    shards_reused = 0
    for split in SPLIT_NAMES:
        if split not in splits:
            continue
        items = splits[split]
        reusable = _reusable_shards(output_directory, previous, split)
        manifest["splits"][split] = {
            "num_shards": options.num_shards,
            "planned_records": len(items),
            "shards": reusable,
        }
        shards_reused += len(reusable)
        for shard, (lo, hi) in enumerate(shard_bounds(len(items), options.num_shards)):
            name = shard_name(split, shard, options.num_shards)
            if name not in reusable:
                work.append((name, items[lo:hi]))
    manifest_lib.save_manifest(manifest_path, manifest)

    paths = [item.path for _, items in work for item in items]
    converter = _Converter(options) if paths else None
    progress = _make_progress(len(paths), options.show_progress)
    try:
        results = converter.results(paths) if converter else iter(())
        for name, items in work:
            entry = _write_shard(output_directory, name, items, results, progress)
            split = name.split("-", 1)[0]
            manifest["splits"][split]["shards"][name] = entry
            manifest_lib.save_manifest(manifest_path, manifest)
            logging.info("Wrote shard %s (%d records)", name, entry["records"])
    finally:
        progress.close()
        if converter:
            converter.close()

    summary, all_bad = _summarize(
        manifest,
        planning_bad_inputs,
        len(work),
        shards_reused,
        len(paths),
        time.monotonic() - start,
    )
    summary.update(plan_summary or {})
    write_bad_inputs_csv(os.path.join(output_directory, BAD_INPUTS_NAME), all_bad)
    manifest["status"] = "complete"
    manifest["summary"] = summary
    manifest_lib.save_manifest(manifest_path, manifest)
    return summary, all_bad
