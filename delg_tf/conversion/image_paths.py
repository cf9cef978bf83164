"""Turns image ids into file paths without ever leaving the image directory.

Ids come from user CSV files, so they are untrusted: an id with a path separator or `..` is
rejected outright, and every path is resolved (symlinks included) and checked to lie inside the
resolved image root before it is used.
"""

from __future__ import annotations

import os

# GLDv2 files are `<id>.jpg`; the other extensions are accepted for custom data in the same layout.
GLDV2_EXTENSIONS = (".jpg", ".jpeg", ".png")
_GLOB_CHARS = frozenset("*?[")


def id_problem(image_id: str) -> str | None:
    """Returns why `image_id` cannot name a file in a directory, or None when it is safe."""
    if not image_id:
        return "empty id"
    if "/" in image_id or "\\" in image_id:
        return "id contains a path separator"
    if ".." in image_id:
        return "id contains '..'"
    if any(ord(c) < 32 for c in image_id):
        return "id contains a control character"
    return None


def image_root_from_flag(directory: str) -> str:
    """Returns the directory part of `--train_directory`/`--test_directory`.

    The official tool takes a glob such as `gldv2/train/*/*/*/`; the root is the path up to the
    first component with a glob character.

    Args:
      directory: a directory or a glob of directories.

    Returns:
      The directory holding the images (the glob prefix).
    """
    parts = os.path.normpath(directory).split(os.sep)
    kept = []
    for part in parts:
        if _GLOB_CHARS & set(part):
            break
        kept.append(part)
    root = os.sep.join(kept)
    return root or (os.sep if directory.startswith(os.sep) else ".")


def is_within(real_root: str, path: str) -> bool:
    """True when `path`, with symlinks resolved, is inside the resolved directory `real_root`."""
    real = os.path.realpath(path)
    return os.path.commonpath([real_root, real]) == real_root


def find_gldv2_image(
    root: str, image_id: str, extensions: tuple[str, ...] = GLDV2_EXTENSIONS
) -> tuple[str | None, str | None]:
    """Finds the file of `image_id` under `root`.

    Looks in the GLDv2 layout `<root>/<id[0]>/<id[1]>/<id[2]>/<id><ext>` first, then directly in
    `<root>/<id><ext>` (a flat folder, which the official tool's `*.jpg` glob also accepts).

    Args:
      root: the image directory (not a glob; see `image_root_from_flag`).
      image_id: the id from the CSV.
      extensions: file extensions tried in order.

    Returns:
      (path, None) when found, or (None, reason) when the id is unsafe, the file is missing, is not
      a regular file, or resolves outside `root`.
    """
    problem = id_problem(image_id)
    if problem:
        return None, problem
    real_root = os.path.realpath(root)
    folders = [os.path.join(root, *image_id[:3])] if len(image_id) >= 3 else []
    folders.append(root)
    for folder in folders:
        for extension in extensions:
            candidate = os.path.join(folder, image_id + extension)
            if not os.path.lexists(candidate):
                continue
            if not is_within(real_root, candidate):
                return None, "path resolves outside the image directory"
            if not os.path.isfile(candidate):
                return None, "not a regular file"
            return candidate, None
    return None, "missing file"
