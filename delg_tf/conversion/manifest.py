"""`manifest.json`: what a TFRecord conversion produces, written atomically as shards complete.

Layout:
  {"format": "delg-tf-tfrecords", "version": 1, "status": "in_progress" | "complete",
   "identity": {...the flags and input digest that define the output...},
   "splits": {"train": {"num_shards": 128, "planned_records": 1234,
                         "shards": {"train-00000-of-00128": {"records": 9, "bytes": 123,
                                    "sha256": "...", "conversions": {"PNG/RGBA": 1},
                                    "bad_inputs": [[id, path, reason], ...],
                                    "bad_input_states": [input state or null, ...]}}}},
   "summary": {...}}   # only when complete
A shard is listed only after its final file exists, so a listed shard whose file still has the
recorded size and sha256 is complete and is reused by a resumed run.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from delg_tf.common.atomic_files import write_text_atomically

MANIFEST_NAME = "manifest.json"
FORMAT = "delg-tf-tfrecords"
VERSION = 1


class ManifestError(ValueError):
    """The manifest exists but cannot be used."""


def new_manifest(identity: dict[str, Any]) -> dict[str, Any]:
    """An in-progress manifest with no completed shards."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "status": "in_progress",
        "identity": identity,
        "splits": {},
    }


def load_manifest(path: str) -> dict[str, Any] | None:
    """Reads a manifest; None when there is none.

    Raises:
      ManifestError: the file is not valid JSON or not a manifest of this tool.
    """
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, ValueError) as error:
        raise ManifestError(f"{path} is unreadable ({error})") from error
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ManifestError(f"{path} is not a delg-tf TFRecord manifest")
    if manifest.get("version") != VERSION:
        raise ManifestError(f"{path} has version {manifest.get('version')}, expected {VERSION}")
    return manifest


def save_manifest(path: str, manifest: dict[str, Any]) -> None:
    """Writes the manifest atomically (never a half-written file, even under kill -9)."""
    write_text_atomically(path, json.dumps(manifest, indent=1, sort_keys=True) + "\n")


def identity_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Human-readable `key: old -> new` lines for every identity entry that differs."""
    keys = sorted(set(old) | set(new))
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)]


def sha256_of_file(path: str) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
