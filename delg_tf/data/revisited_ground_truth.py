"""Revisited Oxford/Paris ground truth: safe loading of the revisitop files and a JSON form.

Three on-disk forms hold the same content:

- `gnd_{roxford5k,rparis6k}.pkl` (revisitop): a pickle of
  `{'imlist': [str], 'qimlist': [str], 'gnd': [{'easy', 'hard', 'junk', 'bbx'}]}` with 0-based
  indices, stored as lists or numpy arrays. Read with a restricted unpickler that can rebuild
  numeric numpy arrays and nothing else, so a crafted file cannot run code.
- `gnd_*.mat` (official MATLAB form, as read by the official `ReadDatasetFile`): 1-based indices,
  converted to 0-based here.
- `*.json`, written by `save_ground_truth_json` (the project's own, reviewable form).

`load_ground_truth` dispatches on the extension and returns one validated structure:
`imlist`/`qimlist` as lists of str, and per query `easy`/`hard`/`junk` as int64 arrays `[N]` of
indices into `imlist` and `bbx` as a float64 array `[4]` holding `[x1, y1, x2, y2]` in pixels.
"""

from __future__ import annotations

import io
import json
import math
import os
import pickle
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from delg_tf.common.atomic_files import write_json_atomically

INDEX_KEYS = ("easy", "hard", "junk")
JSON_FORMAT_NAME = "delg_tf.revisited_ground_truth"
JSON_FORMAT_VERSION = 1

try:  # numpy >= 2
    from numpy._core.multiarray import _reconstruct as _numpy_reconstruct
except ImportError:  # numpy 1.x
    from numpy.core.multiarray import _reconstruct as _numpy_reconstruct

# numpy dtype kinds a ground-truth pickle may contain: bool, ints, floats, str.
_ALLOWED_DTYPE_KINDS = frozenset("biufU")


class GroundTruthError(ValueError):
    """A ground-truth file is unsafe, unreadable or structurally invalid."""


# ----------------------------------------------------------------------------------------------
# Restricted unpickling.


def _checked_dtype(obj: Any, align: Any = False, copy: Any = True) -> np.dtype:
    """`numpy.dtype` replacement for the unpickler: plain numeric or str dtypes only."""
    if not isinstance(obj, str):
        raise pickle.UnpicklingError(f"refusing numpy dtype spec {obj!r} (only type codes)")
    # Always a fresh copy: the pickle's BUILD step then sets state on it, never on numpy's
    # shared builtin descriptors.
    dtype = np.dtype(obj, align=bool(align), copy=True)
    if dtype.kind not in _ALLOWED_DTYPE_KINDS or dtype.fields is not None:
        raise pickle.UnpicklingError(f"refusing numpy dtype {dtype!r} (only numeric/str dtypes)")
    return dtype


def _checked_reconstruct(subtype: Any, shape: Any, dtype_char: Any) -> np.ndarray:
    """`numpy.core.multiarray._reconstruct` replacement: plain ndarrays only, no subclasses."""
    if subtype is not np.ndarray:
        raise pickle.UnpicklingError(f"refusing array subtype {subtype!r}")
    return _numpy_reconstruct(np.ndarray, shape, dtype_char)


def _checked_scalar(dtype: Any, data: Any = None) -> Any:
    """`numpy.core.multiarray.scalar` replacement: rebuilds a numeric scalar from its bytes."""
    if not isinstance(dtype, np.dtype) or dtype.kind not in _ALLOWED_DTYPE_KINDS:
        raise pickle.UnpicklingError(f"refusing numpy scalar of dtype {dtype!r}")
    if not isinstance(data, bytes | bytearray) or len(data) != dtype.itemsize:
        raise pickle.UnpicklingError("malformed numpy scalar payload")
    return np.frombuffer(bytes(data), dtype=dtype)[0]


def _checked_frombuffer(buf: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    """`numpy._core.numeric._frombuffer` replacement (numpy >= 1.16 arrays at protocol 5)."""
    if not isinstance(dtype, np.dtype) or dtype.kind not in _ALLOWED_DTYPE_KINDS:
        raise pickle.UnpicklingError(f"refusing numpy buffer of dtype {dtype!r}")
    if order not in ("C", "F"):
        raise pickle.UnpicklingError(f"refusing array order {order!r}")
    array = np.frombuffer(bytes(memoryview(buf)), dtype=dtype)
    return array.reshape(shape, order=order).copy()


def _checked_codecs_encode(text: Any, encoding: str = "utf-8", *args: Any) -> bytes:
    """`_codecs.encode` replacement: protocol-2 pickles store numpy bytes as latin1 text."""
    if not isinstance(text, str) or encoding.lower().replace("_", "-") not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"refusing _codecs.encode with encoding {encoding!r}")
    return text.encode("latin-1")


def _checked_empty_bytes(*args: Any) -> bytes:
    """`bytes` replacement: protocols 0-2 pickle b'' (empty arrays' data) as `bytes()`."""
    if args:
        raise pickle.UnpicklingError("refusing bytes() with arguments")
    return b""


# (module, name) -> object handed to the unpickler. Everything else is refused. Both the
# numpy 1 (`numpy.core`) and numpy 2 (`numpy._core`) spellings appear in real files.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _checked_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _checked_reconstruct,
    ("numpy.core.multiarray", "scalar"): _checked_scalar,
    ("numpy._core.multiarray", "scalar"): _checked_scalar,
    ("numpy.core.numeric", "_frombuffer"): _checked_frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _checked_frombuffer,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _checked_dtype,
    ("_codecs", "encode"): _checked_codecs_encode,
    ("__builtin__", "bytes"): _checked_empty_bytes,
    ("builtins", "bytes"): _checked_empty_bytes,
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the numpy array/scalar reconstructors (checked wrappers).

    Containers, str, numbers and bytes are native pickle opcodes and need no lookup; every other
    global (os.system, builtins.eval, subprocess, ...) is refused before anything is called.
    """

    def find_class(self, module: str, name: str) -> Any:
        allowed = _ALLOWED_GLOBALS.get((module, name))
        if allowed is None:
            raise pickle.UnpicklingError(
                f"refusing global '{module}.{name}': only numpy array reconstruction is allowed"
            )
        return allowed

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("refusing persistent id")


def safe_unpickle(data: bytes, source: str = "<bytes>") -> Any:
    """Unpickles `data` allowing only containers, scalars and numeric numpy arrays.

    Args:
        data: The pickle bytes.
        source: Name used in error messages (usually the file path).

    Returns:
        The unpickled object.

    Raises:
        GroundTruthError: If the pickle references anything else, or is corrupt.
    """
    try:
        # latin1 lets Python 2 pickles of numpy arrays load (their str are raw bytes).
        return _RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()
    except pickle.UnpicklingError as e:
        raise GroundTruthError(f"{source}: unsafe or corrupt pickle: {e}") from e
    except Exception as e:  # A corrupt stream can fail in many ways; always name the file.
        raise GroundTruthError(f"{source}: corrupt pickle: {type(e).__name__}: {e}") from e


# ----------------------------------------------------------------------------------------------
# Validation: every reader funnels through here.


def _validate_name(name: Any, source: str, where: str) -> str:
    if isinstance(name, bytes):
        name = name.decode("utf-8")
    if isinstance(name, np.str_):
        name = str(name)
    if not isinstance(name, str) or not name:
        raise GroundTruthError(f"{source}: {where}: expected a non-empty image name, got {name!r}")
    # Names become file paths later: they must stay inside the image directory.
    parts = name.replace("\\", "/").split("/")
    if "\x00" in name or os.path.isabs(name) or name.startswith(("/", "\\")) or ".." in parts:
        raise GroundTruthError(f"{source}: {where}: image name {name!r} escapes the image folder")
    return name


def _validate_names(value: Any, source: str, key: str) -> list[str]:
    if isinstance(value, np.ndarray):
        value = value.reshape(-1).tolist()
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise GroundTruthError(f"{source}: '{key}' must be a list of names, got {type(value)}")
    names = [_validate_name(n, source, f"{key}[{i}]") for i, n in enumerate(value)]
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise GroundTruthError(f"{source}: '{key}' lists image {name!r} more than once")
        seen.add(name)
    return names


def _as_number_array(value: Any, source: str, where: str) -> np.ndarray:
    """Converts a list/array of numbers to a flat float64 array, refusing anything else."""
    if isinstance(value, str | bytes | Mapping):
        raise GroundTruthError(f"{source}: {where}: expected numbers, got {type(value).__name__}")
    if isinstance(value, np.ndarray):
        array = value
    else:
        items = list(value) if isinstance(value, Sequence) else [value]
        for item in items:
            if isinstance(item, bool | np.bool_) or not isinstance(
                item, int | float | np.integer | np.floating
            ):
                raise GroundTruthError(
                    f"{source}: {where}: expected numbers, got {item!r} ({type(item).__name__})"
                )
        array = np.asarray(items, dtype=np.float64)
    if array.dtype.kind not in "iuf":
        raise GroundTruthError(f"{source}: {where}: expected numbers, got dtype {array.dtype}")
    return array.astype(np.float64).reshape(-1)


def _validate_indices(value: Any, num_images: int, source: str, where: str) -> np.ndarray:
    values = _as_number_array(value, source, where)
    if values.size and (not np.all(np.isfinite(values)) or np.any(values != np.round(values))):
        raise GroundTruthError(f"{source}: {where}: indices must be integers, got {values}")
    indices = values.astype(np.int64)
    bad = indices[(indices < 0) | (indices >= num_images)]
    if bad.size:
        raise GroundTruthError(
            f"{source}: {where}: index {int(bad[0])} is outside imlist (valid 0..{num_images - 1})"
        )
    return indices


def _validate_bbx(value: Any, source: str, where: str) -> np.ndarray:
    bbx = _as_number_array(value, source, where)
    if bbx.shape != (4,) or not np.all(np.isfinite(bbx)):
        raise GroundTruthError(f"{source}: {where}: expected 4 finite numbers, got {value!r}")
    if bbx[2] <= bbx[0] or bbx[3] <= bbx[1]:
        raise GroundTruthError(f"{source}: {where}: expected [x1, y1, x2, y2], x2>x1, y2>y1: {bbx}")
    return bbx


def validate_ground_truth(raw: Any, source: str = "<ground truth>") -> dict[str, Any]:
    """Checks and normalises a ground-truth structure.

    Args:
        raw: Mapping with `imlist`, `qimlist` (names without extension) and `gnd` (one mapping
            per query with `easy`, `hard`, `junk` 0-based indices into `imlist` and `bbx`).
            Lists and numpy arrays are both accepted. Other keys are ignored.
        source: Name used in error messages (usually the file path).

    Returns:
        `{'imlist': list[str], 'qimlist': list[str], 'gnd': list[dict]}`, each gnd entry holding
        int64 arrays `[N]` for easy/hard/junk and a float64 array `[4]` for bbx.

    Raises:
        GroundTruthError: Naming the file, the query and the field at fault.
    """
    if not isinstance(raw, Mapping):
        raise GroundTruthError(f"{source}: expected a dict at top level, got {type(raw).__name__}")
    for key in ("imlist", "qimlist", "gnd"):
        if key not in raw:
            raise GroundTruthError(f"{source}: missing key '{key}' (found {sorted(map(str, raw))})")
    imlist = _validate_names(raw["imlist"], source, "imlist")
    qimlist = _validate_names(raw["qimlist"], source, "qimlist")
    raw_gnd = raw["gnd"]
    if isinstance(raw_gnd, np.ndarray):
        raw_gnd = raw_gnd.reshape(-1).tolist()
    if isinstance(raw_gnd, str | bytes | Mapping) or not isinstance(raw_gnd, Sequence):
        raise GroundTruthError(f"{source}: 'gnd' must be a list, got {type(raw_gnd).__name__}")
    if len(raw_gnd) != len(qimlist):
        raise GroundTruthError(
            f"{source}: 'gnd' has {len(raw_gnd)} entries but 'qimlist' has {len(qimlist)}"
        )
    gnd = []
    for q, entry in enumerate(raw_gnd):
        label = f"query {q} ({qimlist[q]!r})"
        if not isinstance(entry, Mapping):
            raise GroundTruthError(f"{source}: {label}: expected a dict, got {type(entry)}")
        clean = {}
        for key in (*INDEX_KEYS, "bbx"):
            if key not in entry:
                raise GroundTruthError(f"{source}: {label}: missing field '{key}'")
        for key in INDEX_KEYS:
            where = f"{label} field '{key}'"
            clean[key] = _validate_indices(entry[key], len(imlist), source, where)
        clean["bbx"] = _validate_bbx(entry["bbx"], source, f"{label} field 'bbx'")
        gnd.append(clean)
    return {"imlist": imlist, "qimlist": qimlist, "gnd": gnd}


# ----------------------------------------------------------------------------------------------
# Readers and writer.


def load_ground_truth_pickle(path: str) -> dict[str, Any]:
    """Reads a revisitop `gnd_*.pkl` without executing anything it may contain."""
    with open(path, "rb") as f:
        data = f.read()
    return validate_ground_truth(safe_unpickle(data, source=path), source=path)


def _mat_names(cell: Any, source: str, key: str) -> list[Any]:
    # A MATLAB cell array of strings loads as an object array of 1-element str arrays.
    names = []
    for item in np.asarray(cell, dtype=object).reshape(-1):
        flat = np.asarray(item).reshape(-1)
        if flat.size != 1:
            raise GroundTruthError(f"{source}: '{key}' holds a non-string cell {item!r}")
        names.append(flat[0])
    return names


def load_ground_truth_mat(path: str) -> dict[str, Any]:
    """Reads the official `gnd_*.mat` (1-based indices), converting indices to 0-based."""
    from scipy.io import loadmat  # Only this reader needs scipy.

    try:
        cfg = loadmat(path)
    except Exception as e:  # scipy raises several unrelated types for corrupt files.
        raise GroundTruthError(f"{path}: not a readable .mat file: {e}") from e
    for key in ("imlist", "qimlist", "gnd"):
        if key not in cfg:
            raise GroundTruthError(f"{path}: missing variable '{key}'")
    raw_gnd = np.asarray(cfg["gnd"]).reshape(-1)
    names = raw_gnd.dtype.names or ()
    gnd = []
    for q, entry in enumerate(raw_gnd):
        converted = {}
        for key in (*INDEX_KEYS, "bbx"):
            if key not in names:
                raise GroundTruthError(f"{path}: query {q}: missing field '{key}' in 'gnd'")
            value = np.asarray(entry[key])
            if value.dtype.kind not in "iuf":
                raise GroundTruthError(f"{path}: query {q}: field '{key}' has dtype {value.dtype}")
            value = value.astype(np.float64).reshape(-1)
            # MATLAB indices are 1-based (the official ReadDatasetFile subtracts 1).
            converted[key] = value - 1 if key in INDEX_KEYS else value
        gnd.append(converted)
    raw = {
        "imlist": _mat_names(cfg["imlist"], path, "imlist"),
        "qimlist": _mat_names(cfg["qimlist"], path, "qimlist"),
        "gnd": gnd,
    }
    return validate_ground_truth(raw, source=path)


def load_ground_truth_json(path: str) -> dict[str, Any]:
    """Reads the JSON form written by `save_ground_truth_json`."""
    with open(path, encoding="utf-8") as f:
        try:
            raw = json.load(f)
        except json.JSONDecodeError as e:
            raise GroundTruthError(f"{path}: invalid JSON: {e}") from e
    if isinstance(raw, dict) and raw.get("format", JSON_FORMAT_NAME) != JSON_FORMAT_NAME:
        raise GroundTruthError(f"{path}: 'format' is {raw.get('format')!r}, not a ground truth")
    if isinstance(raw, dict) and raw.get("version", JSON_FORMAT_VERSION) != JSON_FORMAT_VERSION:
        raise GroundTruthError(f"{path}: unsupported version {raw.get('version')!r}")
    return validate_ground_truth(raw, source=path)


def load_ground_truth(path: str) -> dict[str, Any]:
    """Loads Revisited Oxford/Paris ground truth from `.pkl`, `.mat` or `.json`.

    Args:
        path: The ground-truth file; its extension selects the reader.

    Returns:
        `{'imlist': list[str], 'qimlist': list[str], 'gnd': list[dict]}` where each gnd entry
        has `easy`, `hard`, `junk` (int64 `[N]`, 0-based into imlist) and `bbx` (float64 `[4]`,
        `[x1, y1, x2, y2]`).

    Raises:
        GroundTruthError: For an unknown extension, an unsafe pickle or invalid content.
        FileNotFoundError: If `path` does not exist.
    """
    ext = os.path.splitext(path)[1].lower()
    readers = {
        ".pkl": load_ground_truth_pickle,
        ".pickle": load_ground_truth_pickle,
        ".mat": load_ground_truth_mat,
        ".json": load_ground_truth_json,
    }
    if ext not in readers:
        raise GroundTruthError(f"{path}: unknown extension {ext!r} (expected .pkl, .mat or .json)")
    return readers[ext](path)


def _finite_float(x: float) -> float:
    value = float(x)
    if not math.isfinite(value):
        raise GroundTruthError(f"non-finite bbx value {x!r}")
    return value


def save_ground_truth_json(path: str, gt: Mapping[str, Any]) -> None:
    """Writes ground truth as JSON, atomically (a crash leaves the old file or none).

    Args:
        path: Destination `.json` path.
        gt: Ground truth in the structure returned by `load_ground_truth` (validated first).
    """
    clean = validate_ground_truth(gt, source=path)
    doc = {
        "format": JSON_FORMAT_NAME,
        "version": JSON_FORMAT_VERSION,
        "imlist": clean["imlist"],
        "qimlist": clean["qimlist"],
        "gnd": [
            {
                **{k: [int(i) for i in entry[k]] for k in INDEX_KEYS},
                "bbx": [_finite_float(v) for v in entry["bbx"]],
            }
            for entry in clean["gnd"]
        ],
    }
    write_json_atomically(path, doc)
