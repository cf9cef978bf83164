"""Lists a custom dataset laid out as one sub-folder per class: `<root>/<class name>/.../<file>`.

Class names are the top-level folder names, relabelled 0..K-1 in sorted order (as GLDv2 clean
labels are). Image ids are the path relative to the root, without extension, with '/' between
folders and every character other than letters, digits, '.', '_' and '-' replaced by '_'.
The listing is sorted, so it is the same on every run and file system.

Skipped and listed as bad inputs: images directly in the root (no class), files that resolve
outside the root (symlinks), and ids that collide after sanitizing (the first in sorted order
is kept). Hidden files and folders (leading '.') and files without an image extension are
ignored and counted.
"""

from __future__ import annotations

import dataclasses
import os
import re

from delg_tf.conversion.bad_inputs import BadInput
from delg_tf.conversion.image_paths import is_within
from delg_tf.data.image_files import is_image_file

_UNSAFE_CHARS = re.compile(r"[^\w.\-]")


@dataclasses.dataclass(frozen=True)
class FolderListing:
    """What `list_image_folder` found.

    Attributes:
      class_names: sorted class folder names; the index is the new label.
      ids: image ids, in a fixed order (classes sorted, then a sorted walk of each folder).
      paths: image file paths, aligned with ids.
      labels: new label of each image, aligned with ids.
      bad_inputs: skipped files.
      ignored_files: number of hidden files or files without an image extension.
    """

    class_names: list[str]
    ids: list[str]
    paths: list[str]
    labels: list[int]
    bad_inputs: list[BadInput]
    ignored_files: int


def image_id_from_relative_path(relative_path: str) -> str:
    """`"Eiffel Tower/img 1.JPG"` -> `"Eiffel_Tower/img_1"`: sanitized path without extension."""
    stem = os.path.splitext(relative_path)[0]
    parts = stem.replace(os.sep, "/").split("/")
    return "/".join(_UNSAFE_CHARS.sub("_", part) for part in parts)


def list_image_folder(root: str) -> FolderListing:
    """Lists the images and classes under `root`.

    Args:
      root: directory with one sub-folder per class.

    Returns:
      A FolderListing.

    Raises:
      NotADirectoryError: `root` is not a directory.
    """
    if not os.path.isdir(root):
        raise NotADirectoryError(f"--image_root {root!r} is not a directory")
    real_root = os.path.realpath(root)
    class_names, ignored = [], 0
    bad: list[BadInput] = []
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.name.startswith("."):
            ignored += 1
        elif entry.is_dir():
            class_names.append(entry.name)
        elif is_image_file(entry.name):
            bad.append(
                BadInput(
                    image_id_from_relative_path(entry.name), entry.path, "not in a class folder"
                )
            )
        else:
            ignored += 1
    ids, paths, labels = [], [], []
    first_path_of_id: dict[str, str] = {}
    for label, class_name in enumerate(class_names):
        for directory, sub_directories, files in os.walk(os.path.join(root, class_name)):
            hidden = [d for d in sub_directories if d.startswith(".")]
            ignored += len(hidden)
            sub_directories[:] = sorted(d for d in sub_directories if not d.startswith("."))
            for name in sorted(files):
                path = os.path.join(directory, name)
                if name.startswith(".") or not is_image_file(name):
                    ignored += 1
                    continue
                image_id = image_id_from_relative_path(os.path.relpath(path, root))
                if not is_within(real_root, path):
                    bad.append(
                        BadInput(image_id, path, "path resolves outside the image directory")
                    )
                elif not os.path.isfile(path):
                    bad.append(BadInput(image_id, path, "not a regular file"))
                elif image_id in first_path_of_id:
                    bad.append(
                        BadInput(
                            image_id,
                            path,
                            f"duplicate id (same id as {first_path_of_id[image_id]})",
                        )
                    )
                else:
                    first_path_of_id[image_id] = path
                    ids.append(image_id)
                    paths.append(path)
                    labels.append(label)
    return FolderListing(class_names, ids, paths, labels, bad, ignored)
