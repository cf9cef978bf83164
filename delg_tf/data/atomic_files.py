"""Writing files so that a crash (even kill -9) leaves either the old file or the new one."""

from __future__ import annotations

import os
import secrets


def fsync_file(path: str) -> None:
    """Flushes `path`'s data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes_atomically(path: str, data: bytes) -> None:
    """Writes `data` to a temporary file next to `path`, syncs it, then renames it over `path`."""
    directory = os.path.dirname(os.path.abspath(path))
    tmp_path = os.path.join(directory, f".{os.path.basename(path)}.{secrets.token_hex(6)}.tmp")
    # Mode 0o666 minus the umask, as a plain open() would give (mkstemp would give 0o600).
    fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.unlink(tmp_path)
        raise


def write_text_atomically(path: str, text: str) -> None:
    """UTF-8 version of `write_bytes_atomically`."""
    write_bytes_atomically(path, text.encode("utf-8"))
