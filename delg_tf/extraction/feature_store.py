"""On-disk feature store: what extraction writes and retrieval reads, sized for millions of images.

Layout of a store directory (format version 1):

  manifest.json                   {"format": "delg-feature-store", "format_version": 1,
                                   "global_dim": int|null, "global_dtype": "float32"|"float16",
                                   "local_dim": int|null, "complete": bool,
                                   "num_images": int, "num_failures": int,
                                   "shards": [{"name": "shard-00000", "num_images": n,
                                               "num_local_features": N, "num_failures": f}]}
  shard-00000.ids.json            {"ids": [n ids, row order],
                                   "failures": [[id, reason, input state or null], ...]}
  shard-00000.global.npy          [n, global_dim] global descriptors (if global_dim)
  shard-00000.local_offsets.npy   [n + 1] int64; image i owns rows offsets[i]:offsets[i+1]
  shard-00000.local_descriptors.npy [N, local_dim] float32
  shard-00000.local_locations.npy [N, 2] float32, (y, x) in original-image pixels
  shard-00000.local_scales.npy    [N] float32
  shard-00000.local_attention.npy [N] float32

Every array is a plain `.npy` file, so `np.load(path, mmap_mode="r")` reads any of them without
loading it. Ids live in one small JSON per shard, so the manifest stays small and is cheap to
rewrite atomically after every shard.

Crash safety: the shard in progress is streamed to `*.tmp` files (so memory stays bounded by one
image), renamed to its final names only when complete, and only then is the manifest replaced
(tmp + os.replace). A killed writer leaves the manifest describing complete shards only; reopening
the directory resumes after them and the entries of the unfinished shard are simply redone. A
`fcntl` lock keeps two writers out of one directory (the kernel drops it when a writer dies).

Record: a writer given a `record` (the export's identity and every feature-changing setting,
`store_record.py`) keeps it in the manifest and refuses to resume a store whose record differs.

Failures and retries: a failure is kept with the state of its input (`common/input_state.py`:
the file's hash, "missing", ...; null for a failure of the model, not of the file). A re-run
retries a failure whose input changed since (`FeatureStoreWriter.retry`); the retry's result goes
into a later shard and supersedes the failure, so the store's failures are the ids whose last
entry is a failure (`outstanding_failures`). A stored image is never redone.

A store of parts (format_version 2, written by `delg-extract --runner`; layout in
`store_parts.py`) holds format-1 stores in `part-NNNNN/` folders; `FeatureStore` reads it as one
store, the parts' shards in part order, and lists unfinished parts in `missing_parts`.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from delg_tf.common.atomic_files import write_json_atomically
from delg_tf.extraction.store_record import first_difference

FORMAT_NAME = "delg-feature-store"
FORMAT_VERSION = 1
PARTS_FORMAT_VERSION = 2  # a store of format-1 parts (store_parts.py), written with --runner
MANIFEST_NAME = "manifest.json"
LOCK_NAME = ".writer.lock"
LOCAL_KEYS = ("descriptors", "locations", "scales", "attention")
_GLOBAL_DTYPES = ("float32", "float16")
_HEADER_BYTES = 256  # fixed .npy header size, so the row count can be written at the end


class FeatureStoreError(ValueError):
    """A store directory, manifest or shard that cannot be read, or a request it cannot serve."""


class StoreLockedError(FeatureStoreError):
    """Another writer holds the store's lock."""


class RecordMismatchError(FeatureStoreError):
    """A resume asked for another export or another feature-changing setting than the store's."""


def _shard_name(index: int) -> str:
    return f"shard-{index:05d}"


class _NpyStreamWriter:
    """Appends rows to a `.npy` file whose header (with the final row count) is written last."""

    def __init__(self, path: str, dtype: str, row_shape: tuple[int, ...]):
        self.path = path
        self.dtype = np.dtype(dtype)
        self.row_shape = tuple(row_shape)
        self.rows = 0
        self._file = open(path, "wb")
        self._file.write(b"\0" * _HEADER_BYTES)

    def append(self, rows: np.ndarray) -> None:
        rows = np.ascontiguousarray(rows, dtype=self.dtype)
        self._file.write(rows.tobytes())
        self.rows += rows.shape[0]

    def finish(self) -> None:
        header = {
            "descr": np.lib.format.dtype_to_descr(self.dtype),
            "fortran_order": False,
            "shape": (self.rows, *self.row_shape),
        }
        text = repr(header).encode("latin1")
        prefix = b"\x93NUMPY\x01\x00"
        length = _HEADER_BYTES - len(prefix) - 2
        body = text + b" " * (length - len(text) - 1) + b"\n"
        self._file.seek(0)
        self._file.write(prefix + length.to_bytes(2, "little") + body)
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()

    def abandon(self) -> None:
        self._file.close()


def _local_row_shapes(local_dim: int) -> dict[str, tuple[int, ...]]:
    return {"descriptors": (local_dim,), "locations": (2,), "scales": (), "attention": ()}


def _as_rows(value: Any, shape_tail: tuple[int, ...], what: str, image_id: str) -> np.ndarray:
    array = np.asarray(value, dtype=np.float32)
    if array.ndim != 1 + len(shape_tail) or array.shape[1:] != shape_tail:
        want = "[N" + "".join(f", {d}" for d in shape_tail) + "]"
        raise ValueError(f"image {image_id!r}: {what} has shape {array.shape}, expected {want}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"image {image_id!r}: {what} contains NaN or Inf")
    return array


class FeatureStoreWriter:
    """Writes (or resumes writing) a sharded feature store.

    Args:
      output_dir: store directory; created if missing, resumed if it holds a manifest.
      global_dim: global descriptor size D, or None for a store without global descriptors.
      local_dim: local descriptor size d, or None for a store without local features.
      shard_size: images per shard.
      global_dtype: "float32" (default) or "float16" storage for global descriptors.
      record: what makes the features (`store_record.extraction_record`: the export's identity
        and the feature-changing settings), kept in the manifest. Resuming a store whose record
        differs raises `RecordMismatchError` naming the first differing setting, before anything
        is written. None: not recorded, not checked.

    Use as a context manager (or call `close()`): the last, partial shard is written on close.
    """

    def __init__(
        self,
        output_dir: str,
        global_dim: int | None,
        local_dim: int | None,
        shard_size: int = 1000,
        global_dtype: str = "float32",
        record: Mapping[str, Any] | None = None,
    ):
        if global_dim is None and local_dim is None:
            raise ValueError("FeatureStoreWriter: global_dim and local_dim are both None")
        if shard_size < 1:
            raise ValueError(f"FeatureStoreWriter: shard_size must be >= 1, got {shard_size}")
        if global_dtype not in _GLOBAL_DTYPES:
            raise ValueError(f"global_dtype must be one of {_GLOBAL_DTYPES}, got {global_dtype!r}")
        self.output_dir = output_dir
        self.global_dim = None if global_dim is None else int(global_dim)
        self.local_dim = None if local_dim is None else int(local_dim)
        self.shard_size = int(shard_size)
        self.global_dtype = global_dtype
        self.record = None if record is None else dict(record)
        os.makedirs(output_dir, exist_ok=True)
        self._lock_file = open(os.path.join(output_dir, LOCK_NAME), "w")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            raise StoreLockedError(
                f"{output_dir}: another delg-extract is writing this store (it holds "
                f"{LOCK_NAME}; the lock is released when that process ends)"
            ) from None
        try:
            self._manifest = self._load_or_create_manifest()
        except BaseException:
            self._lock_file.close()
            raise
        self._done: set[str] = set()
        payloads = []
        for shard in self._manifest["shards"]:
            ids, failures = _read_shard_ids(output_dir, shard)
            self._done.update(ids)
            payloads.append((ids, failures))
        # id -> [reason, input state]: the failures a re-run may retry.
        self._failed = outstanding_failures(payloads)
        self._done.update(self._failed)
        self._retrying: set[str] = set()
        self._superseded = 0  # earlier failures replaced by entries of the shard in progress
        self._remove_leftovers()
        self._closed = False
        self._open_shard()

    # -- set-up ------------------------------------------------------------------------------

    def _load_or_create_manifest(self) -> dict:
        path = os.path.join(self.output_dir, MANIFEST_NAME)
        if not os.path.exists(path):
            manifest = {
                "format": FORMAT_NAME,
                "format_version": FORMAT_VERSION,
                "global_dim": self.global_dim,
                "global_dtype": self.global_dtype,
                "local_dim": self.local_dim,
                "complete": False,
                "num_images": 0,
                "num_failures": 0,
                "shards": [],
            }
            if self.record is not None:
                manifest["record"] = self.record
            return manifest
        manifest = _read_manifest(self.output_dir)
        if manifest["format_version"] != FORMAT_VERSION:
            raise FeatureStoreError(
                f"{self.output_dir}: holds a store of parts written by delg-extract --runner: "
                "resume it with --runner, or use a new directory"
            )
        if self.record is not None:
            check_record(path, manifest, self.record)
            manifest["record"] = self.record
        for key in ("global_dim", "local_dim", "global_dtype"):
            if manifest[key] != getattr(self, key):
                raise FeatureStoreError(
                    f"{path}: existing store has {key}={manifest[key]!r}, writer was asked for "
                    f"{getattr(self, key)!r}"
                )
        return manifest

    def _remove_leftovers(self) -> None:
        """Deletes tmp files and shard files that a crash left outside the manifest."""
        known = {s["name"] for s in self._manifest["shards"]}
        for name in os.listdir(self.output_dir):
            if name == LOCK_NAME or name == MANIFEST_NAME:
                continue
            stem = name.split(".", 1)[0]
            if name.endswith(".tmp") or (stem.startswith("shard-") and stem not in known):
                os.remove(os.path.join(self.output_dir, name))

    def _open_shard(self) -> None:
        self._shard_name = _shard_name(len(self._manifest["shards"]))
        self._ids: list[str] = []
        self._failures: list[list[str]] = []
        self._offsets = [0]
        self._streams: dict[str, _NpyStreamWriter] = {}
        prefix = os.path.join(self.output_dir, self._shard_name)
        if self.global_dim is not None:
            self._streams["global"] = _NpyStreamWriter(
                f"{prefix}.global.npy.tmp", self.global_dtype, (self.global_dim,)
            )
        if self.local_dim is not None:
            for key, tail in _local_row_shapes(self.local_dim).items():
                self._streams[f"local_{key}"] = _NpyStreamWriter(
                    f"{prefix}.local_{key}.npy.tmp", "float32", tail
                )

    # -- public API --------------------------------------------------------------------------

    def done_ids(self) -> set[str]:
        """Ids already stored or recorded as failed (including the shard in progress)."""
        return set(self._done)

    def recorded_failures(self) -> dict[str, tuple[str, str | None]]:
        """id -> (reason, input state or None) of every failure not superseded yet."""
        return {image_id: (reason, state) for image_id, (reason, state) in self._failed.items()}

    def retry(self, image_id: str) -> None:
        """Lets a recorded failure be added again (its input changed); the new entry supersedes
        it. Until then (a killed run) the failure stays recorded.

        Raises:
          ValueError: `image_id` is not a recorded failure (a stored image is never redone).
        """
        self._check_open()
        if image_id not in self._failed or image_id in self._retrying:
            raise ValueError(f"{self.output_dir}: {image_id!r} is not a failure to retry")
        self._retrying.add(image_id)
        self._done.discard(image_id)

    def add(
        self,
        image_id: str,
        global_descriptor: np.ndarray | None = None,
        local_features: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        """Adds one image.

        Args:
          image_id: unique non-empty string.
          global_descriptor: [D] (required iff the store has global_dim).
          local_features: dict with descriptors [N, d], locations [N, 2] (y, x), scales [N],
            attention [N] (required iff the store has local_dim; N may be 0).
        """
        self._check_open()
        self._check_new_id(image_id)
        rows: dict[str, np.ndarray] = {}
        if self.global_dim is not None:
            if global_descriptor is None:
                raise ValueError(f"image {image_id!r}: the store needs a global descriptor")
            g = _as_rows(
                np.reshape(global_descriptor, (1, -1)), (self.global_dim,), "global", image_id
            )
            rows["global"] = g
        elif global_descriptor is not None:
            raise ValueError(f"image {image_id!r}: store was opened with global_dim=None")
        if self.local_dim is not None:
            if local_features is None:
                raise ValueError(f"image {image_id!r}: the store needs local features")
            missing = [k for k in LOCAL_KEYS if k not in local_features]
            if missing:
                raise ValueError(f"image {image_id!r}: local_features lacks {missing}")
            desc = _as_rows(
                local_features["descriptors"], (self.local_dim,), "descriptors", image_id
            )
            n = desc.shape[0]
            rows["local_descriptors"] = desc
            rows["local_locations"] = _as_rows(
                local_features["locations"], (2,), "locations", image_id
            )
            rows["local_scales"] = _as_rows(local_features["scales"], (), "scales", image_id)
            rows["local_attention"] = _as_rows(
                local_features["attention"], (), "attention", image_id
            )
            for key in ("local_locations", "local_scales", "local_attention"):
                if rows[key].shape[0] != n:
                    raise ValueError(
                        f"image {image_id!r}: {key[6:]} has {rows[key].shape[0]} rows, "
                        f"descriptors have {n}"
                    )
        elif local_features is not None:
            raise ValueError(f"image {image_id!r}: store was opened with local_dim=None")
        for key, value in rows.items():
            self._streams[key].append(value)
        if self.local_dim is not None:
            self._offsets.append(self._offsets[-1] + rows["local_descriptors"].shape[0])
        self._ids.append(image_id)
        self._done.add(image_id)
        if image_id in self._retrying:
            self._retrying.discard(image_id)
            del self._failed[image_id]
            self._superseded += 1
        if len(self._ids) >= self.shard_size:
            self._commit_shard()
            self._open_shard()

    def add_failure(self, image_id: str, reason: str, input_state: str | None = None) -> None:
        """Records an image that could not be processed; it counts as done on resume.

        Args:
          image_id: the image.
          reason: one line naming the file and what is wrong.
          input_state: `common.input_state.input_state` of the file when it failed: a re-run
            retries the image if the state differs. None: always retried (a model failure).
        """
        self._check_open()
        self._check_new_id(image_id)
        self._failures.append([image_id, str(reason), input_state])
        self._done.add(image_id)
        if image_id in self._retrying:
            self._retrying.discard(image_id)
            self._superseded += 1
        self._failed[image_id] = [str(reason), input_state]

    def close(self) -> None:
        """Writes the partial last shard, marks the store complete and releases the lock."""
        if self._closed:
            return
        if self._ids or self._failures:
            self._commit_shard()
        else:
            for stream in self._streams.values():
                stream.abandon()
                os.remove(stream.path)
        self._manifest["complete"] = True
        write_json_atomically(os.path.join(self.output_dir, MANIFEST_NAME), self._manifest)
        self._closed = True
        self._lock_file.close()

    def __enter__(self) -> FeatureStoreWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:  # an exception mid-shard: keep only complete shards, as after a crash
            for stream in self._streams.values():
                stream.abandon()
            self._closed = True
            self._lock_file.close()

    # -- internals ---------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise FeatureStoreError(f"{self.output_dir}: writer is closed")

    def _check_new_id(self, image_id: str) -> None:
        if not isinstance(image_id, str) or not image_id:
            raise ValueError(f"image id must be a non-empty string, got {image_id!r}")
        if image_id in self._done:
            raise ValueError(f"{self.output_dir}: image id {image_id!r} was already added")

    def _commit_shard(self) -> None:
        prefix = os.path.join(self.output_dir, self._shard_name)
        final_paths = []
        for stream in self._streams.values():
            stream.finish()
            final_paths.append((stream.path, stream.path[: -len(".tmp")]))
        if self.local_dim is not None:
            offsets_tmp = f"{prefix}.local_offsets.npy.tmp"
            with open(offsets_tmp, "wb") as f:
                np.save(f, np.asarray(self._offsets, dtype=np.int64))
                f.flush()
                os.fsync(f.fileno())
            final_paths.append((offsets_tmp, offsets_tmp[: -len(".tmp")]))
        ids_tmp = f"{prefix}.ids.json.tmp"
        with open(ids_tmp, "w", encoding="utf-8") as f:
            json.dump({"ids": self._ids, "failures": self._failures}, f)
            f.flush()
            os.fsync(f.fileno())
        final_paths.append((ids_tmp, ids_tmp[: -len(".tmp")]))
        for tmp, final in final_paths:
            os.replace(tmp, final)
        self._manifest["shards"].append(
            {
                "name": self._shard_name,
                "num_images": len(self._ids),
                "num_local_features": int(self._offsets[-1]),
                "num_failures": len(self._failures),
            }
        )
        self._manifest["num_images"] += len(self._ids)
        # Outstanding failures: a retried one is replaced by its new entry.
        self._manifest["num_failures"] += len(self._failures) - self._superseded
        self._superseded = 0
        self._manifest["complete"] = False
        write_json_atomically(os.path.join(self.output_dir, MANIFEST_NAME), self._manifest)


def outstanding_failures(
    shards: Iterable[tuple[Sequence[str], Sequence[Sequence[Any]]]],
) -> dict[str, list]:
    """The failures of a store's shards (in shard order) that no later entry superseded.

    Args:
      shards: (ids, failures) per shard; a failure is [id, reason] (older stores) or
        [id, reason, input state or None].

    Returns:
      id -> [reason, input state or None], in the order the failures were (last) recorded.
    """
    failed: dict[str, list] = {}
    for ids, failures in shards:
        for image_id in ids:
            failed.pop(image_id, None)
        for entry in failures:
            image_id = str(entry[0])
            failed.pop(image_id, None)
            failed[image_id] = [str(entry[1]), entry[2] if len(entry) > 2 else None]
    return failed


def check_record(path: str, manifest: Mapping[str, Any], record: Mapping[str, Any]) -> None:
    """Refuses to resume `manifest` (read from `path`) with another `record`.

    Raises:
      RecordMismatchError: naming the first differing setting and both values; also for a store
        that holds images but no record (written before stores kept one), whose settings are
        unknown.
    """
    stored = manifest.get("record")
    if stored is None:
        if manifest.get("num_images") or manifest.get("num_failures") or manifest.get("parts"):
            raise RecordMismatchError(
                f"{path}: the store records no export or settings (written by an older "
                "delg-extract), so resuming it could mix features: extract into a new directory"
            )
        return
    key = first_difference(stored, record)
    if key is not None:
        raise RecordMismatchError(
            f"{path}: the store was extracted with {key}={stored.get(key)!r}, this run has "
            f"{key}={record.get(key)!r}; resuming would mix features: use the same setting or "
            "a new output directory"
        )


# -- reading ----------------------------------------------------------------------------------


def _read_manifest(path: str) -> dict:
    manifest_path = os.path.join(path, MANIFEST_NAME)
    if not os.path.isdir(path):
        raise FeatureStoreError(f"feature store {path!r} does not exist or is not a directory")
    if not os.path.exists(manifest_path):
        raise FeatureStoreError(f"{manifest_path}: missing manifest (not a feature store?)")
    try:
        with open(manifest_path, encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, ValueError) as e:
        raise FeatureStoreError(f"{manifest_path}: corrupt manifest ({e})") from e
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise FeatureStoreError(f"{manifest_path}: not a {FORMAT_NAME} manifest")
    version = manifest.get("format_version")
    if version not in (FORMAT_VERSION, PARTS_FORMAT_VERSION):
        raise FeatureStoreError(
            f"{manifest_path}: format_version {version!r} is not supported (this code reads "
            f"{FORMAT_VERSION} and {PARTS_FORMAT_VERSION})"
        )
    listing = "shards" if version == FORMAT_VERSION else "parts"
    required = ("global_dim", "local_dim", "global_dtype", listing, "num_images")
    missing = [k for k in required if k not in manifest]
    if missing or not isinstance(manifest[listing], list):
        raise FeatureStoreError(f"{manifest_path}: corrupt manifest (missing {missing})")
    return manifest


def _read_shard_ids(path: str, shard: dict) -> tuple[list[str], list[list[str]]]:
    ids_path = os.path.join(path, f"{shard.get('name')}.ids.json")
    try:
        with open(ids_path, encoding="utf-8") as f:
            payload = json.load(f)
        ids, failures = payload["ids"], payload["failures"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise FeatureStoreError(f"{ids_path}: missing or corrupt shard id file ({e})") from e
    if len(ids) != shard["num_images"]:
        raise FeatureStoreError(f"{ids_path}: {len(ids)} ids, manifest says {shard['num_images']}")
    return ids, failures


class ShardedRows:
    """A read-only [N, D] view over per-shard memory-mapped arrays, without concatenating them.

    Supports `shape`, `dtype`, `len()`, integer/slice/index-array row access, `chunks()` for
    streaming, and `np.asarray(view)` to materialise (which copies everything).
    """

    def __init__(self, arrays: list[np.ndarray], dim: int, dtype: np.dtype):
        self._arrays = arrays
        self._starts = np.cumsum([0] + [a.shape[0] for a in arrays])
        self.shape = (int(self._starts[-1]), dim)
        self.dtype = np.dtype(dtype)
        self.ndim = 2

    def __len__(self) -> int:
        return self.shape[0]

    def chunks(self, max_rows: int = 65536) -> Iterator[tuple[int, np.ndarray]]:
        """Yields (first_row, rows [<=max_rows, D]) in order; rows are memmap slices."""
        for start, array in zip(self._starts[:-1], self._arrays, strict=True):
            for offset in range(0, array.shape[0], max_rows):
                yield int(start) + offset, array[offset : offset + max_rows]

    def __getitem__(self, item):
        if isinstance(item, (int, np.integer)):
            row = int(item) + self.shape[0] if item < 0 else int(item)
            if not 0 <= row < self.shape[0]:
                raise IndexError(f"row {item} out of range for {self.shape[0]} rows")
            shard = int(np.searchsorted(self._starts, row, side="right")) - 1
            return np.asarray(self._arrays[shard][row - self._starts[shard]])
        rows = np.arange(self.shape[0])[item]
        out = np.empty((rows.shape[0], self.shape[1]), self.dtype)
        shards = np.searchsorted(self._starts, rows, side="right") - 1
        for shard in np.unique(shards):
            mask = shards == shard
            out[mask] = self._arrays[shard][rows[mask] - self._starts[shard]]
        return out

    def __array__(self, dtype=None, copy=None):
        out = (
            np.concatenate([np.asarray(a) for a in self._arrays])
            if self._arrays
            else np.empty((0, self.shape[1]), self.dtype)
        )
        return out if dtype is None else out.astype(dtype)


class FeatureStore:
    """Reads a feature store written by `FeatureStoreWriter`; arrays are memory-mapped lazily.

    Args:
      path: the store directory.
    """

    def __init__(self, path: str):
        self.path = path
        self.manifest = _read_manifest(path)
        self.global_dim = self.manifest["global_dim"]
        self.local_dim = self.manifest["local_dim"]
        self.missing_parts: list[str] = []
        if self.manifest["format_version"] == PARTS_FORMAT_VERSION:
            self._shards = self._shards_of_parts()
        else:
            self._shards = self.manifest["shards"]
        self.ids: list[str] = []
        self._shard_of: list[int] = []
        payloads = []
        for s, shard in enumerate(self._shards):
            ids, failures = _read_shard_ids(path, shard)
            self.ids.extend(ids)
            payloads.append((ids, failures))
            self._shard_of.extend([s] * len(ids))
        # (id, reason) of images whose last entry is a failure (a retried one that succeeded
        # later is not listed).
        self.failures: list[tuple[str, str]] = [
            (image_id, reason) for image_id, (reason, _) in outstanding_failures(payloads).items()
        ]
        self._index = {image_id: i for i, image_id in enumerate(self.ids)}
        if len(self._index) != len(self.ids):
            raise FeatureStoreError(f"{path}: duplicate ids across shards")
        self._starts = np.cumsum([0] + [s["num_images"] for s in self._shards])
        self._arrays: dict[tuple[int, str], np.ndarray] = {}

    def _shards_of_parts(self) -> list[dict]:
        """The shards of every finished part, in part order, named "<part>/<shard>".

        A part whose own manifest is missing or not complete (its worker has not finished it) is
        listed in `missing_parts`; the ids of finished parts are readable meanwhile.
        """
        shards = []
        for part in self.manifest["parts"]:
            name = part["name"]
            part_manifest = os.path.join(self.path, name, MANIFEST_NAME)
            if not os.path.exists(part_manifest):
                self.missing_parts.append(name)
                continue
            manifest = _read_manifest(os.path.join(self.path, name))
            if not manifest.get("complete") or manifest["format_version"] != FORMAT_VERSION:
                self.missing_parts.append(name)
                continue
            for key in ("global_dim", "local_dim", "global_dtype"):
                if manifest[key] != self.manifest[key]:
                    raise FeatureStoreError(
                        f"{part_manifest}: {key}={manifest[key]!r}, the store has "
                        f"{self.manifest[key]!r}"
                    )
            shards.extend({**s, "name": f"{name}/{s['name']}"} for s in manifest["shards"])
        return shards

    @property
    def complete(self) -> bool:
        """True if the writer was closed normally (False while extraction is running/killed).

        A store of parts is complete when its last step ran and every part is finished.
        """
        return bool(self.manifest.get("complete", False)) and not self.missing_parts

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, image_id: str) -> bool:
        return image_id in self._index

    def index_of(self, image_id: str) -> int:
        """Row of `image_id` in `ids` / `global_descriptors()`."""
        try:
            return self._index[image_id]
        except KeyError:
            raise KeyError(f"{self.path}: unknown image id {image_id!r}") from None

    def _array(self, shard: int, key: str) -> np.ndarray:
        cached = self._arrays.get((shard, key))
        if cached is not None:
            return cached
        file = os.path.join(self.path, f"{self._shards[shard]['name']}.{key}.npy")
        try:
            array = np.load(file, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as e:
            raise FeatureStoreError(f"{file}: missing or corrupt shard array ({e})") from e
        n = self._shards[shard]["num_images"]
        expected_rows = {
            "global": n,
            "local_offsets": n + 1,
        }.get(key, self._shards[shard]["num_local_features"])
        if array.shape[0] != expected_rows:
            raise FeatureStoreError(
                f"{file}: {array.shape[0]} rows, manifest implies {expected_rows}"
            )
        if key == "local_offsets":
            array = np.array(array)  # small; keep it in memory
        self._arrays[(shard, key)] = array
        return array

    def _require(self, part: str) -> None:
        dim = self.global_dim if part == "global" else self.local_dim
        if dim is None:
            raise FeatureStoreError(f"{self.path}: store has no {part} features")

    def global_descriptors(self) -> ShardedRows:
        """All global descriptors, [N, D] in `ids` order, as a lazy memory-mapped view."""
        self._require("global")
        arrays = [self._array(s, "global") for s in range(len(self._shards))]
        return ShardedRows(arrays, self.global_dim, np.dtype(self.manifest["global_dtype"]))

    def global_descriptor(self, image_id: str) -> np.ndarray:
        """[D] float32 global descriptor of one image."""
        self._require("global")
        row = self.index_of(image_id)
        shard = self._shard_of[row]
        return np.asarray(self._array(shard, "global")[row - self._starts[shard]], np.float32)

    def local_features(self, image_id: str) -> dict[str, np.ndarray]:
        """One image's local features, read without loading its shard.

        Returns:
          dict with locations [N, 2] (y, x), descriptors [N, d], scales [N], attention [N]
          (float32 copies).
        """
        self._require("local")
        row = self.index_of(image_id)
        shard = self._shard_of[row]
        offsets = self._array(shard, "local_offsets")
        i = row - self._starts[shard]
        begin, end = int(offsets[i]), int(offsets[i + 1])
        return {
            key: np.array(self._array(shard, f"local_{key}")[begin:end], dtype=np.float32)
            for key in ("locations", "descriptors", "scales", "attention")
        }
