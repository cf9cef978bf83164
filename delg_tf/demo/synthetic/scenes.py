"""Composes a synthetic landmark: a planar "facade" image built from photos and drawn shapes.

A landmark is one fixed RGB image (the plane). Views of it (synthetic_views.py) are renderings
of that plane through a homography, so every view of a landmark shares the same repeatable local
structure, exactly what DELG's local features and RANSAC re-ranking rely on. The plane mixes
crops of real photographs (natural texture and edges that a CNN finds familiar) with procedural
architecture (window grids, rose windows, polygons, text-like strokes, checker/brick panels)
in a colour palette. Palettes come from a small pool shared by many landmarks (the dataset
writer passes one in), so colour alone never identifies a landmark: a model has to learn the
layout and the photographed content, which is what transfers to held-out landmarks.
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageOps

Color = tuple[int, int, int]


def random_palette(rng: np.random.Generator, n: int = 4) -> list[Color]:
    """Returns `n` RGB colours spread around the hue circle from a random base hue."""
    base = rng.uniform(0.0, 1.0)
    colors = []
    for i in range(n):
        hue = (base + i / n + rng.uniform(-0.06, 0.06)) % 1.0
        sat = rng.uniform(0.3, 0.9)
        val = rng.uniform(0.35, 0.95)
        r, g, b = colorsys.hsv_to_rgb(hue, sat, val)
        colors.append((round(r * 255), round(g * 255), round(b * 255)))
    return colors


def random_crop(
    rng: np.random.Generator, source: Image.Image, size: tuple[int, int], min_frac: float = 0.25
) -> Image.Image:
    """Crops a random region of `source` with the aspect of `size` and resizes it to `size`.

    Args:
        rng: Random generator.
        source: RGB image to crop.
        size: Output (width, height) in pixels.
        min_frac: Smallest crop side as a fraction of the largest crop that fits.

    Returns:
        RGB image of `size`.
    """
    w, h = max(1, size[0]), max(1, size[1])
    aspect = w / h
    max_w = min(source.width, source.height * aspect)
    crop_w = max_w * rng.uniform(min_frac, 1.0)
    crop_h = crop_w / aspect
    x0 = rng.uniform(0, source.width - crop_w)
    y0 = rng.uniform(0, source.height - crop_h)
    box = (x0, y0, x0 + crop_w, y0 + crop_h)
    return source.resize((w, h), Image.Resampling.BILINEAR, box=box, reducing_gap=2.0)


def tint(image: Image.Image, dark: Color, light: Color, amount: float) -> Image.Image:
    """Blends `image` with a two-colour map of its luminance (amount 0: unchanged, 1: duotone)."""
    duo = ImageOps.colorize(image.convert("L"), black=dark, white=light)
    return Image.blend(image, duo, amount)


def _line_width(size: tuple[int, int]) -> int:
    return max(1, round(max(size) / 128))


def _random_box(
    rng: np.random.Generator, size: tuple[int, int], min_frac: float, max_frac: float
) -> tuple[int, int, int, int]:
    w, h = size
    bw = max(4, round(w * rng.uniform(min_frac, max_frac)))
    bh = max(4, round(h * rng.uniform(min_frac, max_frac)))
    x0 = int(rng.integers(0, max(1, w - bw)))
    y0 = int(rng.integers(0, max(1, h - bh)))
    return x0, y0, x0 + bw, y0 + bh


def _pick(rng: np.random.Generator, items: Sequence) -> object:
    return items[int(rng.integers(len(items)))]


def _draw_photo_patch(rng, image, draw, box, palette, photos, lw) -> None:
    x0, y0, x1, y1 = box
    patch = random_crop(rng, _pick(rng, photos), (x1 - x0, y1 - y0))
    if rng.uniform() < 0.4:
        patch = tint(patch, (20, 20, 20), _pick(rng, palette), rng.uniform(0.3, 0.7))
    if rng.uniform() < 0.3:
        mask = Image.new("L", patch.size, 0)
        ImageDraw.Draw(mask).ellipse((0, 0, patch.width - 1, patch.height - 1), fill=255)
        image.paste(patch, (x0, y0), mask)
        draw.ellipse(box, outline=_pick(rng, palette), width=lw + 1)
    else:
        image.paste(patch, (x0, y0))
        draw.rectangle(box, outline=_pick(rng, palette), width=lw + 1)


def _draw_windows(rng, draw, box, palette, photos, image, lw) -> None:
    x0, y0, x1, y1 = box
    rows, cols = int(rng.integers(2, 5)), int(rng.integers(2, 6))
    cw, ch = (x1 - x0) / cols, (y1 - y0) / rows
    fill = _pick(rng, palette)
    frame = _pick(rng, palette)
    arched = rng.uniform() < 0.5
    textured = rng.uniform() < 0.3
    source = _pick(rng, photos)
    for r in range(rows):
        for c in range(cols):
            wx0 = round(x0 + c * cw + cw * 0.18)
            wy0 = round(y0 + r * ch + ch * 0.15)
            wx1 = round(x0 + (c + 1) * cw - cw * 0.18)
            wy1 = round(y0 + (r + 1) * ch - ch * 0.1)
            if wx1 - wx0 < 2 or wy1 - wy0 < 2:
                continue
            if textured:
                image.paste(random_crop(rng, source, (wx1 - wx0, wy1 - wy0)), (wx0, wy0))
            else:
                draw.rectangle((wx0, wy0, wx1, wy1), fill=fill)
            if arched:
                draw.pieslice(
                    (wx0, wy0 - (wx1 - wx0) // 2, wx1, wy0 + (wx1 - wx0) // 2), 180, 360, fill=frame
                )
            draw.rectangle((wx0, wy0, wx1, wy1), outline=frame, width=lw)


def _draw_rose(rng, draw, box, palette, lw) -> None:
    x0, y0, x1, y1 = box
    r = min(x1 - x0, y1 - y0) / 2
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    colors = [_pick(rng, palette) for _ in range(3)]
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colors[0], outline=colors[1], width=lw + 1)
    spokes = int(rng.integers(5, 13))
    phase = rng.uniform(0, 2 * np.pi)
    for k in range(spokes):
        a = phase + 2 * np.pi * k / spokes
        draw.line((cx, cy, cx + r * np.cos(a), cy + r * np.sin(a)), fill=colors[1], width=lw)
    ri = r * rng.uniform(0.2, 0.45)
    draw.ellipse((cx - ri, cy - ri, cx + ri, cy + ri), fill=colors[2], outline=colors[1])


def _draw_polygon(rng, draw, box, palette, lw) -> None:
    x0, y0, x1, y1 = box
    n = int(rng.integers(3, 8))
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    angles = np.sort(rng.uniform(0, 2 * np.pi, n))
    radii = rng.uniform(0.45, 1.0, n)
    if rng.uniform() < 0.3:  # star
        radii[::2] *= 0.45
    pts = [
        (cx + rad * (x1 - x0) / 2 * np.cos(a), cy + rad * (y1 - y0) / 2 * np.sin(a))
        for a, rad in zip(angles, radii, strict=True)
    ]
    draw.polygon(pts, fill=_pick(rng, palette), outline=_pick(rng, palette), width=lw)


def _draw_text(rng, draw, box, palette, lw) -> None:
    """Text-like strokes: rows of glyphs, each 2-4 strokes between points of a 3x3 grid."""
    x0, y0, x1, y1 = box
    draw.rectangle(box, fill=_pick(rng, palette))
    ink = _pick(rng, palette)
    rows = int(rng.integers(1, 4))
    gh = (y1 - y0) / rows
    gw = gh * rng.uniform(0.5, 0.8)
    for r in range(rows):
        x = x0 + gw * 0.3
        while x + gw < x1:
            if rng.uniform() < 0.15:  # word gap
                x += gw * 0.6
                continue
            for _ in range(int(rng.integers(2, 5))):
                (ax, ay), (bx, by) = rng.integers(0, 3, size=(2, 2))
                draw.line(
                    (
                        x + ax * gw * 0.4,
                        y0 + r * gh + gh * (0.15 + ay * 0.35),
                        x + bx * gw * 0.4,
                        y0 + r * gh + gh * (0.15 + by * 0.35),
                    ),
                    fill=ink,
                    width=lw,
                )
            x += gw


def _draw_pattern(rng, draw, box, palette) -> None:
    """Checkerboard or brick panel in two palette colours."""
    x0, y0, x1, y1 = box
    a, b = _pick(rng, palette), _pick(rng, palette)
    cell = max(3, round(min(x1 - x0, y1 - y0) / rng.uniform(3, 9)))
    draw.rectangle(box, fill=b)
    brick = rng.uniform() < 0.5
    for j, y in enumerate(range(y0, y1, cell)):
        offset = (cell // 2) * (j % 2) if brick else 0
        for i, x in enumerate(range(x0 - offset, x1, cell)):
            if brick:
                draw.rectangle(
                    (max(x, x0), y, min(x + cell - 2, x1), min(y + cell - 2, y1)), fill=a
                )
            elif (i + j) % 2 == 0:
                draw.rectangle(
                    (max(x, x0), y, min(x + cell - 1, x1), min(y + cell - 1, y1)), fill=a
                )


def _base_layer(rng, size, palette, photos, textures) -> Image.Image:
    kind = int(rng.integers(4))
    if kind == 0:  # tinted wall texture
        base = random_crop(rng, _pick(rng, textures), size, min_frac=0.4)
        return tint(base, palette[0], palette[1], rng.uniform(0.6, 0.9))
    if kind == 1:  # large tinted photo
        base = random_crop(rng, _pick(rng, photos), size, min_frac=0.5)
        return tint(base, palette[0], palette[1], rng.uniform(0.3, 0.6))
    if kind == 2:  # procedural brick wall
        image = Image.new("RGB", size, palette[0])
        _draw_pattern(rng, ImageDraw.Draw(image), (0, 0, size[0], size[1]), palette[:2])
        return image
    # vertical gradient with a faint texture
    top, bottom = np.array(palette[0], np.float32), np.array(palette[1], np.float32)
    t = np.linspace(0, 1, size[1], dtype=np.float32)[:, None, None]
    grad = np.broadcast_to(top * (1 - t) + bottom * t, (size[1], size[0], 3))
    tex = np.asarray(random_crop(rng, _pick(rng, textures), size).convert("L"), np.float32)
    out = grad * (0.75 + 0.5 * tex[..., None] / 255.0)
    return Image.fromarray(np.clip(out, 0, 255).astype(np.uint8), mode="RGB")


_ELEMENTS = ("photo", "windows", "rose", "polygon", "text", "pattern")
# Photos and window grids carry the most local structure: draw them most often.
_ELEMENT_WEIGHTS = np.array([0.3, 0.2, 0.1, 0.1, 0.15, 0.15])


def draw_elements(
    rng: np.random.Generator,
    image: Image.Image,
    palette: Sequence[Color],
    photos: Sequence[Image.Image],
    count: int,
    min_frac: float = 0.15,
    max_frac: float = 0.5,
) -> None:
    """Draws `count` random architectural/photo elements onto `image` in place."""
    draw = ImageDraw.Draw(image)
    lw = _line_width(image.size)
    for _ in range(count):
        kind = _ELEMENTS[int(rng.choice(len(_ELEMENTS), p=_ELEMENT_WEIGHTS))]
        box = _random_box(rng, image.size, min_frac, max_frac)
        if kind == "photo":
            _draw_photo_patch(rng, image, draw, box, palette, photos, lw)
        elif kind == "windows":
            _draw_windows(rng, draw, box, palette, photos, image, lw)
        elif kind == "rose":
            _draw_rose(rng, draw, box, palette, lw)
        elif kind == "polygon":
            _draw_polygon(rng, draw, box, palette, lw)
        elif kind == "text":
            _draw_text(rng, draw, box, palette, lw)
        else:
            _draw_pattern(rng, draw, box, palette)


def landmark_plane_size(rng: np.random.Generator, long_side: int) -> tuple[int, int]:
    """Samples a landmark plane's (width, height): long side fixed, aspect in [0.65, 1.55]."""
    aspect = float(np.exp(rng.uniform(np.log(0.65), np.log(1.55))))
    if aspect >= 1.0:
        return long_side, max(8, round(long_side / aspect))
    return max(8, round(long_side * aspect)), long_side


def compose_landmark(
    rng: np.random.Generator,
    size: tuple[int, int],
    photos: Sequence[Image.Image],
    textures: Sequence[Image.Image],
    palette: Sequence[Color] | None = None,
) -> Image.Image:
    """Composes one landmark plane.

    Args:
        rng: Random generator; the same state always gives the same landmark.
        size: Plane (width, height) in pixels.
        photos: RGB source photographs (synthetic_photos.load_photos()).
        textures: RGB surface textures (synthetic_photos.load_textures()).
        palette: Colours to build with (their order is shuffled per landmark); None draws a
            fresh random palette of 4 colours.

    Returns:
        RGB image `[height, width, 3]` of the landmark facade.
    """
    if palette is None:
        palette = random_palette(rng, 4)
    else:
        palette = [tuple(palette[i]) for i in rng.permutation(len(palette))]
    image = _base_layer(rng, size, palette, photos, textures)
    draw_elements(rng, image, palette, photos, int(rng.integers(8, 14)), 0.12, 0.45)
    # A frame gives the facade a clear outline (a building edge).
    ImageDraw.Draw(image).rectangle(
        (0, 0, size[0] - 1, size[1] - 1), outline=palette[2], width=_line_width(size) * 2
    )
    return image
