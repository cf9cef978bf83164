"""Reads one image file and returns RGB JPEG bytes ready for a TFRecord, or says why it cannot.

The official `build_image_dataset.py` stores the original file bytes and only checks that they
decode to 3 channels. We keep that for files that already are RGB JPEGs (their bytes are stored
unchanged, after a full decode proves they are not truncated), and convert everything else
(PNG, WebP, BMP, GIF, TIFF, grayscale, CMYK, alpha, 16-bit, ...) to an RGB baseline JPEG, so the
training reader can always `decode_jpeg` to `[H, W, 3]`.

Conversion is deterministic (fixed quality and subsampling, no EXIF/ICC written, no EXIF
rotation applied, alpha composited over white): the same input gives the same bytes with the same
Pillow/libjpeg-turbo build, which resumable conversion relies on. EXIF orientation is ignored on
purpose: `tf.io.decode_jpeg` ignores it for the JPEGs we keep, and both paths must agree.

This module imports no TensorFlow: it runs in the conversion worker processes.
"""

from __future__ import annotations

import dataclasses
import io
import os

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from delg_tf.data.jpeg_coding import arithmetic_hint

# Formats whose bytes `tf.io.decode_jpeg` reads directly (MPO is a JPEG with extra frames appended).
_JPEG_FORMATS = frozenset({"JPEG", "MPO"})
_EXIF_ORIENTATION = 0x0112
DEFAULT_JPEG_QUALITY = 95
# Smallest side kept by default: a stride-32 backbone gives at least a 1x1 conv5 map on the whole
# image, and the random crop (>= 8% of the area) still has a few pixels per side.
DEFAULT_MIN_IMAGE_SIZE = 32


class BadImageError(ValueError):
    """The file cannot become a training record.

    `reason` is a short category, optionally followed by details in parentheses.
    """

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class SanitizedImage:
    """One image ready to store.

    Attributes:
      jpeg: RGB JPEG bytes (`tf.io.decode_jpeg` gives `[height, width, 3]` uint8).
      height: image height in pixels.
      width: image width in pixels.
      conversion: None when the original bytes were kept, else what was converted, for example
        "PNG/RGBA" (source format / source Pillow mode).
    """

    jpeg: bytes
    height: int
    width: int
    conversion: str | None


def _to_rgb(image: Image.Image) -> Image.Image:
    """Converts any Pillow mode to 8-bit RGB, scaling high bit depths instead of clipping."""
    mode = image.mode
    if mode in ("RGBA", "LA", "PA", "P", "RGBa", "La") or "transparency" in image.info:
        # Composite over white: transparent pixels often hold arbitrary colours.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode == "RGB":
        return image
    if mode.startswith("I;16") or mode in ("I", "F"):
        values = np.asarray(image, dtype=np.float64)
        if mode.startswith("I;16"):
            values = values / 257.0  # 0..65535 -> 0..255
        elif values.size and (values.max() > 255 or values.min() < 0):
            low, high = float(values.min()), float(values.max())
            values = (values - low) * (255.0 / max(high - low, 1e-12))
        gray = np.clip(np.rint(values), 0, 255).astype(np.uint8)
        return Image.fromarray(gray, mode="L").convert("RGB")
    return image.convert("RGB")


def _encode_jpeg(image: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    # No optimize/progressive and no metadata: the bytes depend only on the pixels and quality.
    image.save(buffer, format="JPEG", quality=quality, subsampling="4:2:0", optimize=False)
    return buffer.getvalue()


def sanitize_image_bytes(
    data: bytes,
    *,
    min_image_size: int = DEFAULT_MIN_IMAGE_SIZE,
    jpeg_quality: int = DEFAULT_JPEG_QUALITY,
) -> SanitizedImage:
    """Validates encoded image bytes and returns RGB JPEG bytes.

    Args:
      data: the file's bytes.
      min_image_size: smallest accepted height and width in pixels (0 accepts any size).
      jpeg_quality: JPEG quality used when the image must be re-encoded.

    Returns:
      A SanitizedImage; `jpeg` is `data` itself when `data` is an RGB JPEG.

    Raises:
      BadImageError: empty, not an image, truncated/corrupt, too large, or too small.
    """
    if not data:
        raise BadImageError("empty file (0 bytes)")
    try:
        image = Image.open(io.BytesIO(data))
        source_format = image.format or "unknown"
        source_mode = image.mode
        image.load()  # A full decode: catches truncated and corrupt data.
    except Image.DecompressionBombError as error:
        raise BadImageError(f"image too large to decode safely ({error})") from error
    except UnidentifiedImageError as error:
        raise BadImageError("not an image (Pillow cannot identify the format)") from error
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise BadImageError(
            f"truncated or corrupt image ({error}{arithmetic_hint(data)})"
        ) from error
    # EXIF orientation (a phone's "rotate 90"): stored upright, as extraction reads it; TF's
    # JPEG decoder ignores the tag, so a tagged image cannot keep its bytes.
    orientation = image.getexif().get(_EXIF_ORIENTATION, 1)
    if orientation != 1:
        try:
            image = ImageOps.exif_transpose(image)
        except (OSError, ValueError) as error:
            raise BadImageError(f"cannot apply EXIF orientation {orientation} ({error})") from error
    width, height = image.size
    if min(width, height) < min_image_size:
        raise BadImageError(
            f"image too small ({width}x{height} px, --min_image_size is {min_image_size})"
        )
    if source_format in _JPEG_FORMATS and source_mode == "RGB" and orientation == 1:
        return SanitizedImage(jpeg=data, height=height, width=width, conversion=None)
    try:
        rgb = _to_rgb(image)
    except (OSError, ValueError) as error:
        raise BadImageError(
            f"cannot convert to RGB ({source_format}/{source_mode}: {error})"
        ) from error
    return SanitizedImage(
        jpeg=_encode_jpeg(rgb, jpeg_quality),
        height=height,
        width=width,
        conversion=f"{source_format}/{source_mode}"
        + (f", EXIF orientation {orientation}" if orientation != 1 else ""),
    )


def sanitize_image_file(
    path: str,
    *,
    min_image_size: int = DEFAULT_MIN_IMAGE_SIZE,
    jpeg_quality: int = DEFAULT_JPEG_QUALITY,
) -> SanitizedImage:
    """Reads `path` (a regular file) and applies `sanitize_image_bytes`.

    Raises:
      BadImageError: the file is missing, not a regular file, unreadable, or a bad image.
    """
    # Checked before opening: opening a FIFO or device could block or never end.
    if not os.path.lexists(path):
        raise BadImageError("missing file")
    if not os.path.isfile(path):
        raise BadImageError("not a regular file")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError as error:
        raise BadImageError("missing file") from error
    except OSError as error:
        raise BadImageError(f"unreadable file ({error.strerror or error})") from error
    return sanitize_image_bytes(data, min_image_size=min_image_size, jpeg_quality=jpeg_quality)
