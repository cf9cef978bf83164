"""Which files count as images, for training folders and for extraction alike.

Every format here is decoded by PIL, which both `delg-build-tfrecords` (the sanitizer re-encodes
to JPEG) and `delg-extract` use, so a folder that trains is a folder that extracts. Matching is
case-insensitive on the extension.
"""

from __future__ import annotations

import os

IMAGE_EXTENSIONS = (
    ".jpg",
    ".jpeg",
    ".png",
    ".bmp",
    ".gif",
    ".webp",
    ".tif",
    ".tiff",
    ".ppm",
    ".pgm",
    ".pbm",
)


def is_image_file(name: str) -> bool:
    """Whether a file name has one of `IMAGE_EXTENSIONS` (any case)."""
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS
