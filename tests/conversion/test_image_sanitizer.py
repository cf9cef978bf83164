"""image_sanitizer: RGB JPEGs kept byte for byte, everything else converted or rejected."""

import io
import os

import numpy as np
import pytest
from PIL import Image

from delg_tf.conversion.image_sanitizer import (
    BadImageError,
    sanitize_image_bytes,
    sanitize_image_file,
)


def _encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def _decode(jpeg: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(jpeg))
    assert image.format == "JPEG" and image.mode == "RGB"
    return np.asarray(image)


def _noise_rgb(h=40, w=56, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_rgb_jpeg_bytes_are_kept_unchanged():
    data = _encode(Image.fromarray(_noise_rgb()), "JPEG", quality=80)
    result = sanitize_image_bytes(data, min_image_size=32)
    assert result.jpeg is data
    assert (result.height, result.width) == (40, 56)
    assert result.conversion is None


def test_rgb_png_is_reencoded_to_a_close_jpeg():
    pixels = np.zeros((48, 64, 3), np.uint8)
    pixels[:, :32] = (200, 30, 60)  # Flat colour blocks survive JPEG almost exactly.
    pixels[:, 32:] = (10, 180, 240)
    result = sanitize_image_bytes(_encode(Image.fromarray(pixels), "PNG"), min_image_size=32)
    assert result.conversion == "PNG/RGB"
    decoded = _decode(result.jpeg)
    assert decoded.shape == (48, 64, 3)
    assert np.abs(decoded[:, 4:28].astype(int) - (200, 30, 60)).max() <= 6
    assert np.abs(decoded[:, 36:60].astype(int) - (10, 180, 240)).max() <= 6


def test_grayscale_jpeg_becomes_three_equal_channels():
    gray = np.full((40, 40), 77, np.uint8)
    result = sanitize_image_bytes(_encode(Image.fromarray(gray, "L"), "JPEG"), min_image_size=32)
    assert result.conversion == "JPEG/L"
    decoded = _decode(result.jpeg).astype(int)
    assert np.abs(decoded - 77).max() <= 2


def test_cmyk_jpeg_is_converted():
    cmyk = Image.new("CMYK", (40, 40), (0, 255, 255, 0))  # Pure red in CMYK.
    result = sanitize_image_bytes(_encode(cmyk, "JPEG"), min_image_size=32)
    assert result.conversion == "JPEG/CMYK"
    red = _decode(result.jpeg)[20, 20].astype(int)
    assert red[0] > 200 and red[1] < 50 and red[2] < 50


def test_alpha_is_composited_on_white():
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[:, :20] = (0, 0, 255, 255)  # Opaque blue.
    rgba[:, 20:] = (0, 0, 0, 0)  # Transparent black: must become white, not black.
    result = sanitize_image_bytes(_encode(Image.fromarray(rgba, "RGBA"), "PNG"), min_image_size=32)
    assert result.conversion == "PNG/RGBA"
    decoded = _decode(result.jpeg).astype(int)
    assert np.abs(decoded[20, 35] - (255, 255, 255)).max() <= 4
    assert np.abs(decoded[20, 5] - (0, 0, 255)).max() <= 8


def test_16_bit_grayscale_is_scaled_not_clipped():
    values = np.zeros((40, 40), np.uint16)
    values[:, :20] = 65535
    values[:, 20:] = 32896  # 128 * 257
    image = Image.fromarray(values)
    assert image.mode.startswith("I;16")
    result = sanitize_image_bytes(_encode(image, "PNG"), min_image_size=32)
    assert result.conversion.startswith("PNG/I")
    decoded = _decode(result.jpeg).astype(int)
    assert np.abs(decoded[20, 5] - 255).max() <= 2
    assert np.abs(decoded[20, 35] - 128).max() <= 2


def test_palette_gif_is_converted():
    image = Image.fromarray(_noise_rgb()).convert("P")
    result = sanitize_image_bytes(_encode(image, "GIF"), min_image_size=32)
    assert result.conversion == "GIF/P"
    assert _decode(result.jpeg).shape == (40, 56, 3)


def test_conversion_is_deterministic():
    data = _encode(Image.fromarray(_noise_rgb(seed=3)), "PNG")
    first = sanitize_image_bytes(data, min_image_size=0, jpeg_quality=90).jpeg
    second = sanitize_image_bytes(data, min_image_size=0, jpeg_quality=90).jpeg
    assert first == second
    assert sanitize_image_bytes(data, min_image_size=0, jpeg_quality=60).jpeg != first


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "empty file"),
        (b"id,landmark_id\nthis is a csv, not an image\n", "not an image"),
    ],
)
def test_empty_and_non_image_bytes_are_rejected(data, reason):
    with pytest.raises(BadImageError) as error:
        sanitize_image_bytes(data)
    assert error.value.reason.startswith(reason)


def test_truncated_jpeg_is_rejected():
    data = _encode(Image.fromarray(_noise_rgb(64, 64)), "JPEG")
    with pytest.raises(BadImageError) as error:
        sanitize_image_bytes(data[: len(data) // 2])
    assert error.value.reason.startswith("truncated or corrupt image")


def test_too_small_image_is_rejected_with_its_size():
    data = _encode(Image.fromarray(_noise_rgb(20, 50)), "JPEG")
    with pytest.raises(BadImageError) as error:
        sanitize_image_bytes(data, min_image_size=32)
    assert error.value.reason == "image too small (50x20 px, --min_image_size is 32)"
    assert sanitize_image_bytes(data, min_image_size=20).width == 50


def test_file_errors(tmp_path):
    with pytest.raises(BadImageError, match="missing file"):
        sanitize_image_file(str(tmp_path / "nope.jpg"))
    with pytest.raises(BadImageError, match="not a regular file"):
        sanitize_image_file(str(tmp_path))
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)  # Opening it would block forever: it must be rejected before opening.
    with pytest.raises(BadImageError, match="not a regular file"):
        sanitize_image_file(str(fifo))
    good = tmp_path / "good.jpg"
    good.write_bytes(_encode(Image.fromarray(_noise_rgb()), "JPEG"))
    assert sanitize_image_file(str(good)).jpeg == good.read_bytes()
