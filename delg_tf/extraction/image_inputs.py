"""Which images to extract, and how each is loaded: folder, list, or Revisited Oxford/Paris.

Loading follows the official DELG extraction (`delg/extract_features.py`, `examples/extractor.py`,
`utils.py` in research/delf/delf/python): PIL decode to RGB
(turned upright by its EXIF orientation tag first, which the official code ignores),
queries cropped to their `bbx` (rounded to integers), then a bilinear resize so the longest side is
at most `max_image_size * resize_factor`, where a query's resize_factor is
max(crop size) / max(full image size), as if the full image had been capped. The returned
`scale_factors` (new_h / h, new_w / w) map keypoints back to the pixels of the (cropped) image.
"""

from __future__ import annotations

import dataclasses
import os
import stat
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageOps

from delg_tf.common.input_state import input_state
from delg_tf.data.image_files import IMAGE_EXTENSIONS
from delg_tf.data.jpeg_coding import HEADER_BYTES, arithmetic_hint
from delg_tf.data.revisited_ground_truth import load_ground_truth

MIN_IMAGE_SIDE = 10  # the official extractor gives up on images smaller than this


class ImageLoadError(ValueError):
    """An image that cannot be read, decoded, cropped or is too small; the message names it."""


@dataclasses.dataclass(frozen=True)
class ImageRecord:
    """One image to extract.

    Attributes:
      image_id: Id in the feature store (relative path without extension, or a dataset name).
      path: File to read.
      bbox: Optional (x1, y1, x2, y2) crop in pixels (Revisited Oxford/Paris queries).
      root: The image folder the record was listed from, if any: the file (after following
        symlinks) must lie inside it.
    """

    image_id: str
    path: str
    bbox: tuple[float, float, float, float] | None = None
    root: str | None = dataclasses.field(default=None, compare=False)


def check_readable_file(path: str, root: str | None = None) -> None:
    """Refuses what would hang a reader or leave the image folder, before opening anything.

    One rule for every binary that reads images (delg-build-tfrecords applies the same one):
    only regular files (a FIFO named *.jpg blocks `open()` forever; a device never ends), and,
    for a file listed from a folder, no symlink whose target lies outside that folder.

    A `scheme://` path (gs://, read through tf.io.gfile) is an object store's object: it has no
    FIFOs, devices or symlinks, so the check is local only.

    Raises:
      ImageLoadError: naming the file and what it is.
    """
    if "://" in path:
        return
    try:
        mode = os.stat(path).st_mode  # follows symlinks: the target is what would be read
    except OSError as e:
        raise ImageLoadError(f"{path}: {e.strerror or type(e).__name__}") from e
    if not stat.S_ISREG(mode):
        raise ImageLoadError(f"{path}: not a regular file (a FIFO, device or directory)")
    if root is not None:
        real_root = os.path.realpath(root)
        real = os.path.realpath(path)
        if os.path.commonpath([real_root, real]) != real_root:
            raise ImageLoadError(f"{path}: a symlink to {real}, outside the image folder {root}")


def record_state(record: ImageRecord) -> str:
    """The state of a record's input (`common.input_state`), with its query crop: a failure is
    retried when this changes (the file was added, replaced, made readable, or the crop moved)."""
    state = input_state(record.path, record.root)
    return state if record.bbox is None else f"{state} bbx={list(record.bbox)}"


def _safe_relative(relative: str, source: str) -> str:
    """Normalises a relative path and refuses absolute paths and `..` escapes."""
    norm = os.path.normpath(relative.replace("\\", "/"))
    if os.path.isabs(norm) or norm == ".." or norm.startswith("../") or norm in ("", "."):
        raise ValueError(f"{source}: path {relative!r} is absolute or leaves the image directory")
    return norm


def _id_from_relative(relative: str) -> str:
    return os.path.splitext(relative)[0].replace(os.sep, "/")


def _check_unique(records: list[ImageRecord], source: str) -> list[ImageRecord]:
    seen: dict[str, str] = {}
    for r in records:
        if r.image_id in seen:
            raise ValueError(
                f"{source}: {seen[r.image_id]!r} and {r.path!r} both give image id {r.image_id!r}"
            )
        seen[r.image_id] = r.path
    return records


def folder_records(
    images_dir: str, extensions: Sequence[str] = IMAGE_EXTENSIONS
) -> list[ImageRecord]:
    """Every image file under a folder (recursively), sorted; id = relative path sans extension.

    Raises:
      FileNotFoundError: if `images_dir` is not a directory.
      ValueError: if two files map to one id (e.g. a.jpg and a.png).
    """
    if not os.path.isdir(images_dir):
        raise FileNotFoundError(f"--images_dir {images_dir!r} is not a directory")
    wanted = tuple(e.lower() for e in extensions)
    records = []
    for root, dirs, files in os.walk(images_dir):
        dirs.sort()
        for name in sorted(files):
            if name.lower().endswith(wanted) and not name.startswith("."):
                full = os.path.join(root, name)
                rel = os.path.relpath(full, images_dir)
                records.append(ImageRecord(_id_from_relative(rel), full, root=images_dir))
    return _check_unique(records, images_dir)


def list_records(image_list: str, images_dir: str | None = None) -> list[ImageRecord]:
    """Images named in a text file, one path per line relative to `images_dir`.

    Blank lines and lines starting with '#' are ignored. Without `images_dir`, paths are relative
    to the list file's folder. A line may not escape that folder.
    """
    base = images_dir if images_dir is not None else os.path.dirname(os.path.abspath(image_list))
    records = []
    with open(image_list, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            rel = _safe_relative(line, f"{image_list}:{number}")
            records.append(ImageRecord(_id_from_relative(rel), os.path.join(base, rel), root=base))
    return _check_unique(records, image_list)


def revisited_records(
    dataset_file_path: str, images_dir: str, image_set: str, extension: str = ".jpg"
) -> list[ImageRecord]:
    """Revisited Oxford/Paris queries (cropped to `bbx`) or index images, in dataset order.

    Args:
      dataset_file_path: gnd_roxford5k.pkl / .mat / .json.
      images_dir: folder holding `<name>.jpg`.
      image_set: "query" or "index".
      extension: image file extension.
    """
    if image_set not in ("query", "index"):
        raise ValueError(f"--image_set must be 'query' or 'index', got {image_set!r}")
    gt = load_ground_truth(dataset_file_path)
    names = gt["qimlist"] if image_set == "query" else gt["imlist"]
    records = []
    for i, name in enumerate(names):
        rel = _safe_relative(name + extension, f"{dataset_file_path} {image_set} {i}")
        bbox = None
        if image_set == "query":
            bbox = tuple(float(v) for v in gt["gnd"][i]["bbx"])
        records.append(ImageRecord(name, os.path.join(images_dir, rel), bbox, root=images_dir))
    return _check_unique(records, dataset_file_path)


def crop_box(bbox: Sequence[float]) -> tuple[int, int, int, int]:
    """The official integer crop of a query bbx: each coordinate rounded."""
    x1, y1, x2, y2 = (int(round(v)) for v in bbox)
    return x1, y1, x2, y2


def resize_image(
    image: np.ndarray, max_image_size: int, resize_factor: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Downsizes so the longest side is at most round(max_image_size * resize_factor).

    Args:
      image: uint8 [H, W, 3].
      max_image_size: cap on the longest side (< 0 means no cap).
      resize_factor: extra factor on the cap (queries: crop size / full image size).

    Returns:
      (uint8 [h, w, 3] image, float32 [2] scale factors (h / H, w / W)).
    """
    height, width = image.shape[:2]
    cap = int(round(max_image_size * resize_factor)) if max_image_size >= 0 else -1
    if cap < 0 or max(height, width) <= cap:
        return image, np.ones(2, np.float32)
    scale = cap / max(height, width)
    new_h, new_w = max(1, int(round(height * scale))), max(1, int(round(width * scale)))
    resized = np.asarray(Image.fromarray(image).resize((new_w, new_h), Image.BILINEAR))
    return resized, np.array([new_h / height, new_w / width], np.float32)


def _readable(path: str):
    """A local path as is; a `scheme://` URL (gs://, on Beam workers) read through tf.io.gfile."""
    if "://" not in path:
        return path
    import io

    import tensorflow as tf  # only for remote images

    try:
        with tf.io.gfile.GFile(path, "rb") as f:
            return io.BytesIO(f.read())
    except tf.errors.OpError as e:
        raise OSError(f"cannot read {path}: {e.message}") from None


def _head(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(HEADER_BYTES)
    except OSError:
        return b""


def load_image(record: ImageRecord, max_image_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Reads, crops (queries) and resizes one image.

    Returns:
      (uint8 [h, w, 3] model input, float32 [2] scale factors from the (cropped) image to it).

    Raises:
      ImageLoadError: naming the file, for an unreadable, corrupt, badly cropped or tiny image.
    """
    check_readable_file(record.path, record.root)
    try:
        with Image.open(_readable(record.path)) as pil:
            # Upright as the photo is shown (a phone's "rotate 90" tag), as the TFRecord
            # conversion stores it; a no-op for untagged images such as Revisited Oxford/Paris.
            pil = ImageOps.exif_transpose(pil).convert("RGB")
            full_size = max(pil.size)
            resize_factor = 1.0
            if record.bbox is not None:
                x1, y1, x2, y2 = crop_box(record.bbox)
                if x2 <= x1 or y2 <= y1:
                    raise ImageLoadError(f"{record.path}: empty query bbx {record.bbox}")
                # As the official code: PIL crop (pixels outside the image would be black).
                pil = pil.crop((x1, y1, x2, y2))
                resize_factor = max(pil.size) / full_size
            image = np.asarray(pil, dtype=np.uint8)
    except ImageLoadError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        hint = "" if "://" in record.path else arithmetic_hint(_head(record.path))
        raise ImageLoadError(f"{record.path}: {type(e).__name__}: {e}{hint}") from e
    resized, factors = resize_image(image, max_image_size, resize_factor)
    if min(resized.shape[:2]) < MIN_IMAGE_SIDE:
        raise ImageLoadError(
            f"{record.path}: image is {resized.shape[1]}x{resized.shape[0]} after resizing, "
            f"smaller than {MIN_IMAGE_SIDE} px"
        )
    return resized, factors
