"""Writing files so that a crash (even kill -9) leaves either the old file or the new one.

Every package writes its small local files (manifests, settings, metrics, reports) through here.
Files next to checkpoints or in a feature store may be on an object store (gs://): those go
through `write_gfile_text_atomically`, which uses `tf.io.gfile`.
"""

from __future__ import annotations

import json
import os
import secrets
from typing import Any


def fsync_file(path: str) -> None:
    """Flushes `path`'s data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes_atomically(path: str, data: bytes, *, sync: bool = True) -> None:
    """Writes `data` to a temporary file next to `path`, then renames it over `path`.

    The temporary file is `.<name>.<random hex>.tmp` in `path`'s directory (which must exist) and
    is removed if the write fails.

    Args:
        path: Destination file.
        data: Its full new content.
        sync: fsync the data before the rename, so even a power loss leaves the old or the new
            file; without it only a process crash is covered (for files cheap to redo).
    """
    directory = os.path.dirname(os.path.abspath(path))
    tmp_path = os.path.join(directory, f".{os.path.basename(path)}.{secrets.token_hex(6)}.tmp")
    # Mode 0o666 minus the umask, as a plain open() would give (mkstemp would give 0o600).
    fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if sync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.unlink(tmp_path)
        raise


def write_text_atomically(path: str, text: str, *, sync: bool = True) -> None:
    """UTF-8 version of `write_bytes_atomically`."""
    write_bytes_atomically(path, text.encode("utf-8"), sync=sync)


def write_gfile_text_atomically(path: str, text: str) -> None:
    """Writes `text` to `path` through `tf.io.gfile`: a temporary file, then a rename over `path`.

    A crash leaves the old file or the new one, never half of one (locally: the rename is atomic;
    on object stores the object appears whole).
    """
    import tensorflow as tf  # here, so that local writers do not pay TensorFlow's import

    tmp = f"{path}.tmp-{os.getpid()}"
    with tf.io.gfile.GFile(tmp, "w") as f:
        f.write(text)
    tf.io.gfile.rename(tmp, path, overwrite=True)


def write_json_atomically(
    path: str, value: Any, *, indent: int | None = None, sort_keys: bool = False, sync: bool = True
) -> None:
    """Writes `json.dumps(value, indent=..., sort_keys=...)` via `write_text_atomically`."""
    write_text_atomically(path, json.dumps(value, indent=indent, sort_keys=sort_keys), sync=sync)
