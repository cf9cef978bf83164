"""Tests for synthetic_photos and synthetic_scenes (landmark plane composition)."""

import numpy as np
from PIL import Image

from delg_tf.demo.synthetic import photos as synthetic_photos
from delg_tf.demo.synthetic import scenes as synthetic_scenes


def test_bundled_photos_load_offline_as_rgb():
    photos, textures = synthetic_photos.load_photos(), synthetic_photos.load_textures()
    assert len(photos) == len(synthetic_photos.PHOTO_NAMES)
    assert len(textures) == len(synthetic_photos.TEXTURE_NAMES)
    for image in photos + textures:
        assert image.mode == "RGB" and 64 <= max(image.size) <= 512


def test_to_rgb_converts_gray_bool_and_rgba():
    gray = synthetic_photos._to_rgb_image(np.full((4, 6), 7, np.uint8), "gray")
    assert gray.size == (6, 4) and gray.getpixel((0, 0)) == (7, 7, 7)
    binary = synthetic_photos._to_rgb_image(np.ones((3, 3), bool), "bool")
    assert binary.getpixel((1, 1)) == (255, 255, 255)
    rgba = np.zeros((2, 2, 4), np.uint8)  # fully transparent -> white
    assert synthetic_photos._to_rgb_image(rgba, "rgba").getpixel((0, 0)) == (255, 255, 255)


def test_plane_size_keeps_long_side_and_aspect_bounds():
    rng = np.random.default_rng(0)
    for _ in range(100):
        w, h = synthetic_scenes.landmark_plane_size(rng, 200)
        assert max(w, h) == 200
        assert 0.64 <= w / h <= 1.56


def _plane(seed, size=(96, 72)):
    return synthetic_scenes.compose_landmark(
        np.random.default_rng(seed),
        size,
        synthetic_photos.load_photos(),
        synthetic_photos.load_textures(),
    )


def test_compose_landmark_is_deterministic_distinct_and_structured():
    a, b, c = _plane(1), _plane(1), _plane(2)
    assert a.size == (96, 72) and a.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    diff = np.abs(np.asarray(a, float) - np.asarray(c, float)).mean()
    assert diff > 20  # different landmarks look different
    # Local structure: strong gradients across the plane, not a flat poster.
    gray = np.asarray(a.convert("L"), float)
    grad = np.abs(np.diff(gray, axis=1))
    assert (grad > 20).mean() > 0.02


def test_random_crop_and_tint_shapes():
    rng = np.random.default_rng(0)
    src = Image.new("RGB", (50, 40), (100, 150, 200))
    crop = synthetic_scenes.random_crop(rng, src, (30, 10))
    assert crop.size == (30, 10) and crop.getpixel((5, 5)) == (100, 150, 200)
    duo = synthetic_scenes.tint(crop, (0, 0, 0), (255, 0, 0), 1.0)
    r, g, b = duo.getpixel((5, 5))
    assert g == 0 and b == 0 and r > 0
