"""Arithmetic-coded JPEGs (issue 12): decoded by every image path here, explained if not."""

import base64

import numpy as np
import pytest
import tensorflow as tf

from delg_tf.conversion.image_sanitizer import BadImageError, sanitize_image_bytes
from delg_tf.data.jpeg_coding import arithmetic_frame, arithmetic_hint
from delg_tf.extraction.image_inputs import ImageLoadError, ImageRecord, load_image

# A real arithmetic-coded JPEG: 24x16, left half (200, 40, 40), right half (40, 40, 200), written
# by libjpeg-turbo 2.1.5's `cjpeg -arithmetic -quality 95` (Debian libjpeg-turbo-progs). Neither
# Pillow nor TF can write one, hence the bytes.
ARITHMETIC_JPEG = base64.b64decode(
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAIBAQEBAQIBAQECAgICAgQDAgICAgUEBAMEBgUGBgYFBgYGBwkIBgcJBwYGCAsI"
    "CQoKCgoKBggLDAsKDAkKCgr/2wBDAQICAgICAgUDAwUKBwYHCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoK"
    "CgoKCgoKCgoKCgoKCgr/yQARCAAQABgDASIAAhEBAxEB/8wACgAQEAUBEBEF/9oADAMBAAIRAxEAPwD/ANmFzj9S/wDVeUo5"
    "z0N/aDr6p0D57cKbatihMwqlHOe2p3Ygq4TXBKRJuYbV/VOuBsOA/9k="
)
LEFT, RIGHT = (200, 40, 40), (40, 40, 200)


def _check_halves(image):
    image = np.asarray(image, np.int32)
    assert image.shape == (16, 24, 3)
    np.testing.assert_allclose(image[:, :10].mean(axis=(0, 1)), LEFT, atol=4)
    np.testing.assert_allclose(image[:, 14:].mean(axis=(0, 1)), RIGHT, atol=4)


def test_the_marker_tells_arithmetic_from_huffman_coding():
    assert arithmetic_frame(ARITHMETIC_JPEG) == "SOF9"
    huffman = tf.io.encode_jpeg(np.zeros([16, 24, 3], np.uint8)).numpy()
    assert arithmetic_frame(huffman) is None and arithmetic_hint(huffman) == ""
    assert arithmetic_frame(b"\x89PNG\r\n\x1a\n") is None


def test_a_real_arithmetic_jpeg_decodes_in_conversion_extraction_and_tf(tmp_path):
    _check_halves(tf.io.decode_jpeg(ARITHMETIC_JPEG).numpy())
    sanitized = sanitize_image_bytes(ARITHMETIC_JPEG, min_image_size=16)
    assert sanitized.jpeg == ARITHMETIC_JPEG  # kept as is: an RGB JPEG that TF decodes
    path = tmp_path / "arith.jpg"
    path.write_bytes(ARITHMETIC_JPEG)
    image, factors = load_image(ImageRecord("arith", str(path)), 1024)
    _check_halves(image)
    np.testing.assert_array_equal(factors, [1, 1])


def test_an_arithmetic_jpeg_that_pillow_cannot_decode_says_so(tmp_path):
    # What a Pillow without arithmetic decoding meets: the SOF9 header, then data it fails on
    # (here: the file ends inside the scan).
    broken = ARITHMETIC_JPEG[: ARITHMETIC_JPEG.find(b"\xff\xda") + 20]
    with pytest.raises(BadImageError) as caught:
        sanitize_image_bytes(broken, min_image_size=16)
    assert "arithmetic-coded JPEG (SOF9)" in caught.value.reason
    assert "jpegtran -copy all" in caught.value.reason
    path = tmp_path / "broken.jpg"
    path.write_bytes(broken)
    with pytest.raises(ImageLoadError, match=r"arithmetic-coded JPEG \(SOF9\).*re-encode it"):
        load_image(ImageRecord("broken", str(path)), 1024)
