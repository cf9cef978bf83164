"""What an input file looks like now, so a recorded failure is retried only when that changed.

One rule for every binary that records inputs it could not use (`delg-extract`'s feature store,
`delg-build-tfrecords`' shards): a failure is stored with the state of its input at the time, and
a re-run retries it when the state differs (a missing file that now exists, a corrupt file that
was replaced, a file that became readable or a symlink now pointing inside its folder). A failure
whose input is unchanged is permanent for those bytes and those settings (a resume with other
settings is refused anyway), so it is reported again without being decoded again.

The state is computed without opening anything that could block (a FIFO named *.jpg): the file
is stat'ed first and only a regular file is read (to hash it).
"""

from __future__ import annotations

import hashlib
import os
import stat

_BLOCK = 1 << 20


def input_state(path: str, root: str | None = None) -> str:
    """A short string that changes when what a reader would get from `path` changes.

    Args:
      path: a local file path (a `scheme://` URL is read through tf.io.gfile).
      root: the image folder the path was listed from, if any: a symlink whose target lies
        outside it is a different state from the same bytes inside it.

    Returns:
      "missing", "not a regular file", "outside <root>", "unreadable (<error>)" or
      "sha256:<hex of the bytes>".
    """
    if "://" in path:
        return _remote_state(path)
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return "missing"
    if not stat.S_ISREG(mode):
        return "not a regular file"
    if root is not None:
        real_root = os.path.realpath(root)
        if os.path.commonpath([real_root, os.path.realpath(path)]) != real_root:
            return f"outside {root}"
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(_BLOCK), b""):
                digest.update(block)
    except OSError as error:
        return f"unreadable ({error.strerror or type(error).__name__})"
    return f"sha256:{digest.hexdigest()}"


def _remote_state(path: str) -> str:
    import tensorflow as tf  # only for object-store paths (Beam workers on gs://)

    digest = hashlib.sha256()
    try:
        if not tf.io.gfile.exists(path):
            return "missing"
        with tf.io.gfile.GFile(path, "rb") as f:
            for block in iter(lambda: f.read(_BLOCK), b""):
                digest.update(block)
    except tf.errors.OpError as error:
        return f"unreadable ({error.message})"
    return f"sha256:{digest.hexdigest()}"
