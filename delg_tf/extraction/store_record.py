"""What made a feature store: the export's identity and every setting that changes a feature.

A store keeps this record in its manifest. Resuming a store with a different export or a different
setting would silently mix two kinds of features in one store (issue 12 item 2), so the writer
compares the record of the new run with the stored one and refuses the first difference, naming
the setting. Settings that only change speed or file layout (decode threads, shard size, the
export's path) are not part of the record: a store may be resumed from a copy of the export.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from typing import Any

FINGERPRINT_FILENAME = "fingerprint.pb"


def export_identity(model_path: str) -> str:
    """A string that changes when the exported graph or any variable value changes.

    TF >= 2.12 writes `fingerprint.pb` into every SavedModel. Its "singleprint" is not enough: its
    graph hash ignores constant values (two exports that differ only in a constant in the graph
    have the same singleprint, measured with TF 2.21), so the identity is the fingerprint's
    `saved_model_checksum` (a hash of saved_model.pb, constants included) with its
    `checkpoint_hash` (a hash of the variables' index, which holds a CRC32C of every variable's
    bytes). A SavedModel without fingerprint.pb (older TF) is identified by SHA-256 of
    saved_model.pb and variables/variables.index instead. A copy of an export has its identity; a
    re-export of the same checkpoint may not (its saved_model.pb differs), which errs on the safe
    side.

    Args:
      model_path: SavedModel directory (any tf.io.gfile path).

    Returns:
      "tf-fingerprint:<saved_model_checksum>/<checkpoint_hash>" or "sha256:<hex>".
    """
    # Imported here: the feature store (numpy only, read by retrieval) imports this module.
    import tensorflow as tf

    if tf.io.gfile.exists(os.path.join(model_path, FINGERPRINT_FILENAME)):
        fingerprint = tf.saved_model.experimental.read_fingerprint(model_path)
        return f"tf-fingerprint:{fingerprint.saved_model_checksum}/{fingerprint.checkpoint_hash}"
    digest = hashlib.sha256()
    for name in ("saved_model.pb", "saved_model.pbtxt", "variables/variables.index"):
        path = os.path.join(model_path, name)
        if tf.io.gfile.exists(path):
            digest.update(name.encode())
            with tf.io.gfile.GFile(path, "rb") as f:
                digest.update(f.read())
    return f"sha256:{digest.hexdigest()}"


def extraction_record(
    export: str,
    options: Any,
    global_dim: int | None,
    local_dim: int | None,
    global_dtype: str = "float32",
    image_set: str | None = None,
    query_crop: bool = False,
) -> dict[str, Any]:
    """The record of one extraction run, as stored in the manifest (JSON values only).

    Args:
      export: `export_identity` of the SavedModel.
      options: `ExtractionOptions` (scales, global scale indices, threshold, max features, max
        image size).
      global_dim: D.
      local_dim: d.
      global_dtype: storage dtype of global descriptors.
      image_set: "query"/"index" with a Revisited ground-truth file, else None.
      query_crop: whether queries are cropped to their bounding boxes.
    """
    record = {
        "export": export,
        "image_scales": [float(s) for s in options.image_scales],
        "global_scales_ind": [int(i) for i in options.global_scales_ind],
        "attention_threshold": float(options.attention_threshold),
        "max_feature_num": int(options.max_feature_num),
        "max_image_size": int(options.max_image_size),
        "global_dim": global_dim,
        "local_dim": local_dim,
        "global_dtype": global_dtype,
        "image_set": image_set,
        "query_crop": bool(query_crop),
    }
    # Round-trip through JSON so a record compares equal to the one read back from a manifest.
    return json.loads(json.dumps(record))


def first_difference(stored: Mapping[str, Any], wanted: Mapping[str, Any]) -> str | None:
    """The first setting (in `wanted`'s order, then `stored`'s) whose values differ, or None."""
    for key in list(wanted) + [k for k in stored if k not in wanted]:
        if stored.get(key) != wanted.get(key):
            return key
    return None
