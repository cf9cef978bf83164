"""The per-image work of TFRecord conversion, run in worker processes.

Workers are started with the "spawn" context and import only Pillow and numpy (never
TensorFlow): the parent, which has imported TensorFlow, writes the records. Forking a process
after TensorFlow has started its threads is unsafe, and importing TensorFlow in every worker
costs ~3 s and hundreds of MB each.
"""

from __future__ import annotations

import os
import threading
import time

from delg_tf.conversion.image_sanitizer import BadImageError, sanitize_image_file

# (jpeg bytes, height, width, conversion or None) on success, or the reason string on failure.
WorkerResult = tuple[bytes, int, int, str | None] | str


def _exit_when_orphaned(parent_pid: int) -> None:
    # A parent killed with SIGKILL cannot stop its pool; without this the workers would wait on
    # their task queue forever.
    while os.getppid() == parent_pid:
        time.sleep(0.5)
    os._exit(1)


def init_worker(parent_pid: int) -> None:
    """Pool initializer: exits the worker soon after its parent dies."""
    threading.Thread(target=_exit_when_orphaned, args=(parent_pid,), daemon=True).start()


def convert_one(path: str, min_image_size: int, jpeg_quality: int) -> WorkerResult:
    """Reads and sanitizes one image file; never raises for a bad image.

    Args:
      path: image file path (already checked to lie inside its image root).
      min_image_size: smallest accepted side in pixels.
      jpeg_quality: quality for re-encoded images.

    Returns:
      (jpeg, height, width, conversion) or the reason the file was skipped.
    """
    try:
        image = sanitize_image_file(path, min_image_size=min_image_size, jpeg_quality=jpeg_quality)
    except BadImageError as error:
        return error.reason
    except MemoryError:
        return "out of memory while decoding"
    except Exception as error:  # noqa: BLE001 - a decoder bug on one file must not stop the run.
        return f"unexpected error decoding ({type(error).__name__}: {error})"
    return image.jpeg, image.height, image.width, image.conversion
