"""The photographs synthetic landmarks are built from: images that ship inside scikit-image.

Only `skimage.data` images stored in the scikit-image wheel are used; the ones that would need
a pooch download (kidney, lily, brain, ...) are never called, so generation works offline and
gives the same pixels on every machine with the same scikit-image version. A missing image is an
error, not a silent skip, because skipping would change every landmark built after it.
"""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image

# Images that are files inside the scikit-image wheel (checked offline with 0.24-0.26).
# Photographs give natural local structure; textures give wall/ground surfaces.
PHOTO_NAMES = (
    "astronaut",
    "camera",
    "coffee",
    "chelsea",
    "rocket",
    "coins",
    "immunohistochemistry",
    "hubble_deep_field",
    "retina",
    "page",
    "text",
    "clock",
    "logo",
    "cell",
    "colorwheel",
    "moon",
)
TEXTURE_NAMES = ("brick", "grass", "gravel")

# Larger sources are shrunk once so random crops stay cheap.
_MAX_SIDE = 512


def _to_rgb_image(array: np.ndarray, name: str) -> Image.Image:
    """Converts a skimage.data array (bool, gray, RGB or RGBA) to an RGB PIL image."""
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    if array.dtype != np.uint8:
        raise ValueError(f"skimage.data.{name}() returned dtype {array.dtype}, expected uint8")
    if array.ndim == 2:
        image = Image.fromarray(array, mode="L").convert("RGB")
    elif array.ndim == 3 and array.shape[2] == 4:
        # Composite transparent logos on white so no undefined colour leaks in.
        rgba = Image.fromarray(array, mode="RGBA")
        image = Image.new("RGB", rgba.size, (255, 255, 255))
        image.paste(rgba, mask=rgba.getchannel("A"))
    elif array.ndim == 3 and array.shape[2] == 3:
        image = Image.fromarray(array, mode="RGB")
    else:
        raise ValueError(f"skimage.data.{name}() returned unexpected shape {array.shape}")
    if max(image.size) > _MAX_SIDE:
        scale = _MAX_SIDE / max(image.size)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.LANCZOS)
    return image


def _load(names: tuple[str, ...]) -> tuple[Image.Image, ...]:
    import skimage.data  # Lazy: skimage.data itself lazy-loads its images.

    images = []
    for name in names:
        try:
            array = getattr(skimage.data, name)()
        except Exception as e:  # ModuleNotFoundError (needs pooch), OSError, ...
            raise RuntimeError(
                f"skimage.data.{name}() is not available offline ({type(e).__name__}: {e}); "
                "synthetic landmarks need the images bundled in the scikit-image wheel"
            ) from e
        images.append(_to_rgb_image(np.asarray(array), name))
    return tuple(images)


@functools.lru_cache(maxsize=1)
def load_photos() -> tuple[Image.Image, ...]:
    """Returns the bundled photographs as RGB PIL images (cached per process).

    Returns:
        One RGB image per name in `PHOTO_NAMES`, in that order, long side <= 512 px.
    """
    return _load(PHOTO_NAMES)


@functools.lru_cache(maxsize=1)
def load_textures() -> tuple[Image.Image, ...]:
    """Returns the bundled surface textures (brick, grass, gravel) as RGB PIL images."""
    return _load(TEXTURE_NAMES)
