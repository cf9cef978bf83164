"""Renders photographs of a planar synthetic landmark from random viewpoints.

A view is a pinhole camera looking at the landmark plane: the plane point (x, y) in plane pixels
maps to view pixels through the homography `H = K [r1 r2 t] C` (C centres the plane, R is
roll*pitch*yaw, t places the plane at depth d so its fronto-parallel size is `zoom` times the
largest size that fits the view). The landmark is pasted over a random street background and
random occluders are drawn on top, then colour, blur and noise change the photograph.

Whether a view is an easy, hard or junk positive (Revisited Oxford protocol) follows from its
geometry only (`measure_view` then `classify_view`): how much of the landmark is visible, how
much of the image it covers and how strong the viewpoint change is. Geometry is cheap and does
not need the rendered pixels, so a rerun can label an already written image without redrawing it.

Coordinates are continuous pixels (pixel i covers [i, i+1)), Pillow's convention for PERSPECTIVE
transforms, so `H` maps plane pixel centres to view pixel centres exactly.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from delg_tf.demo.synthetic import scenes as synthetic_scenes

# The easy/hard/junk rule (see classify_view).
JUNK_MAX_VISIBLE = 0.25  # below: the landmark is barely visible -> junk
JUNK_MAX_AREA = 0.03  # below: the visible landmark covers almost none of the image -> junk
EASY_MIN_VISIBLE = 0.6
EASY_MIN_AREA = 0.15
EASY_MAX_TILT_DEG = 30.0
EASY_MAX_ROLL_DEG = 10.0

VIEW_MODES = ("query", "easy", "hard", "junk")
_ASPECTS = ((4, 3), (3, 4), (1, 1), (3, 2), (2, 3))
_GRID = 32  # plane samples per side for the visible fraction


@dataclasses.dataclass(frozen=True)
class Occluder:
    """Something in front of the landmark: shape in ('ellipse', 'rectangle', 'pole')."""

    shape: str
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in view pixels


@dataclasses.dataclass(frozen=True)
class ViewParams:
    """Camera and scene parameters of one view (all that geometry depends on)."""

    width: int
    height: int
    zoom: float  # fronto-parallel landmark size relative to the largest that fits the view
    yaw_deg: float  # rotation about the plane's vertical axis (walking around the landmark)
    pitch_deg: float  # looking up / down at it
    roll_deg: float  # in-plane camera rotation
    shift_x: float  # landmark centre offset from the image centre, fraction of width
    shift_y: float  # same, fraction of height
    occluders: tuple[Occluder, ...] = ()
    strength: float = 0.5  # photometric distortion strength in [0, 1]


@dataclasses.dataclass(frozen=True)
class ViewGeometry:
    """How the landmark appears in a view.

    Attributes:
        visible_fraction: Fraction of the landmark plane's area inside the image and not occluded.
        area_fraction: Fraction of the image covered by the unoccluded landmark.
        tilt_deg: Angle between the plane normal and the optical axis (out-of-plane rotation).
        roll_deg: In-plane rotation of the camera.
        bbox: [x1, y1, x2, y2] of the landmark region (occluders included) clipped to the
            image, in pixels, or None if no part of the landmark is in the image.
    """

    visible_fraction: float
    area_fraction: float
    tilt_deg: float
    roll_deg: float
    bbox: tuple[float, float, float, float] | None


def classify_view(geometry: ViewGeometry) -> str:
    """Revisited-Oxford label of a view of a query's landmark.

    junk: the landmark is barely visible (visible_fraction < 0.25 or area_fraction < 0.03).
    easy: most of it is visible (>= 0.6), it fills >= 15% of the image, and the viewpoint is
        mild (tilt <= 30 deg, |roll| <= 10 deg).
    hard: everything else (strong viewpoint change, small overlap, heavy occlusion or small scale).

    Args:
        geometry: Output of `measure_view`.

    Returns:
        'easy', 'hard' or 'junk'.
    """
    if geometry.visible_fraction < JUNK_MAX_VISIBLE or geometry.area_fraction < JUNK_MAX_AREA:
        return "junk"
    if (
        geometry.visible_fraction >= EASY_MIN_VISIBLE
        and geometry.area_fraction >= EASY_MIN_AREA
        and geometry.tilt_deg <= EASY_MAX_TILT_DEG
        and abs(geometry.roll_deg) <= EASY_MAX_ROLL_DEG
    ):
        return "easy"
    return "hard"


def _rotation(params: ViewParams) -> np.ndarray:
    y, p, r = np.deg2rad([params.yaw_deg, params.pitch_deg, params.roll_deg])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return rz @ rx @ ry


def _camera(params: ViewParams, plane_size: tuple[int, int]) -> tuple[np.ndarray, ...]:
    """Returns K [3,3], R [3,3], t [3], C [3,3] for the pinhole model in the module docstring."""
    w, h = params.width, params.height
    focal = float(max(w, h))  # ~53 degree field of view on the long side
    scale = params.zoom * min(w / plane_size[0], h / plane_size[1])
    depth = focal / scale
    t = np.array([params.shift_x * w * depth / focal, params.shift_y * h * depth / focal, depth])
    k = np.array([[focal, 0, w / 2], [0, focal, h / 2], [0, 0, 1.0]])
    c = np.array([[1.0, 0, -plane_size[0] / 2], [0, 1, -plane_size[1] / 2], [0, 0, 1]])
    return k, _rotation(params), t, c


def view_homography(params: ViewParams, plane_size: tuple[int, int]) -> np.ndarray:
    """Homography mapping plane pixels (x, y, 1) to view pixels, `[3, 3]` with H[2, 2] = 1.

    Args:
        params: The view.
        plane_size: Landmark plane (width, height) in pixels.
    """
    k, r, t, c = _camera(params, plane_size)
    hom = k @ np.column_stack([r[:, 0], r[:, 1], t]) @ c
    return hom / hom[2, 2]


def apply_homography(hom: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Maps points `[N, 2]` (x, y) through `hom` `[3, 3]`; returns `[N, 2]`."""
    pts = np.concatenate([points, np.ones((len(points), 1))], axis=1) @ hom.T
    return pts[:, :2] / pts[:, 2:3]


def _min_depth_ratio(params: ViewParams, plane_size: tuple[int, int]) -> float:
    """Smallest depth of a plane corner relative to the plane centre's depth."""
    _, r, t, c = _camera(params, plane_size)
    w, h = plane_size
    corners = np.array([[0, 0, 1], [w, 0, 1], [0, h, 1], [w, h, 1]], float) @ c.T
    depths = corners[:, 0] * r[2, 0] + corners[:, 1] * r[2, 1] + t[2]
    return float(depths.min() / t[2])


def occluder_mask(params: ViewParams) -> Image.Image:
    """'L' image `[height, width]`, 255 where an occluder covers the view."""
    mask = Image.new("L", (params.width, params.height), 0)
    draw = ImageDraw.Draw(mask)
    for occ in params.occluders:
        if occ.shape == "ellipse":
            draw.ellipse(occ.box, fill=255)
        else:  # rectangle and pole are both boxes
            draw.rectangle(occ.box, fill=255)
    return mask


def landmark_mask(params: ViewParams, plane_size: tuple[int, int]) -> np.ndarray:
    """Bool `[height, width]`: pixels onto which the landmark plane projects (before occluders)."""
    w, h = plane_size
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], float)
    quad = apply_homography(view_homography(params, plane_size), corners)
    mask = Image.new("L", (params.width, params.height), 0)
    ImageDraw.Draw(mask).polygon([tuple(p) for p in quad], fill=255)
    return np.asarray(mask) > 0


def measure_view(params: ViewParams, plane_size: tuple[int, int]) -> ViewGeometry:
    """Computes the geometry that decides easy/hard/junk (no rendering needed).

    Args:
        params: The view.
        plane_size: Landmark plane (width, height) in pixels.

    Returns:
        The view's ViewGeometry.
    """
    w, h = plane_size
    occluded = np.asarray(occluder_mask(params)) > 0
    # Visible fraction: a regular grid over the plane, mapped into the view.
    u = (np.arange(_GRID) + 0.5) / _GRID
    gx, gy = np.meshgrid(u * w, u * h)
    pts = apply_homography(
        view_homography(params, plane_size), np.stack([gx, gy], -1).reshape(-1, 2)
    )
    inside = (pts[:, 0] >= 0) & (pts[:, 0] < params.width) & (pts[:, 1] >= 0)
    inside &= pts[:, 1] < params.height
    ix = np.clip(pts[:, 0].astype(np.int64), 0, params.width - 1)
    iy = np.clip(pts[:, 1].astype(np.int64), 0, params.height - 1)
    visible = inside & ~occluded[iy, ix]
    region = landmark_mask(params, plane_size)
    area = float((region & ~occluded).mean())
    bbox = None
    if region.any():
        ys, xs = np.nonzero(region)
        bbox = (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
    r = _rotation(params)
    tilt = float(np.rad2deg(np.arccos(np.clip(abs(r[2, 2]), 0.0, 1.0))))
    return ViewGeometry(float(visible.mean()), area, tilt, float(params.roll_deg), bbox)


def _sample_occluders(rng, mode, width, height) -> tuple[Occluder, ...]:
    counts = {"query": (0, 1), "easy": (0, 2), "hard": (1, 4), "junk": (0, 3)}[mode]
    sizes = {"query": (0.05, 0.1), "easy": (0.08, 0.2), "hard": (0.15, 0.4), "junk": (0.1, 0.3)}
    lo, hi = sizes[mode]
    occluders = []
    for _ in range(int(rng.integers(*counts))):
        shape = ("ellipse", "rectangle", "pole")[int(rng.integers(3))]
        if shape == "pole":
            ow, oh = width * rng.uniform(0.02, 0.06), height * rng.uniform(0.5, 1.0)
            x0, y0 = rng.uniform(0, width - ow), height - oh
        else:
            ow, oh = width * rng.uniform(lo, hi), height * rng.uniform(lo, hi)
            x0 = rng.uniform(-ow / 4, width - ow * 3 / 4)
            # Things in front of a landmark stand on the ground: bias to the lower half.
            y0 = rng.uniform(height * 0.3, height - oh / 2)
        occluders.append(Occluder(shape, (float(x0), float(y0), float(x0 + ow), float(y0 + oh))))
    return tuple(occluders)


def sample_view_params(
    rng: np.random.Generator, mode: str, image_size: int, plane_size: tuple[int, int]
) -> ViewParams:
    """Samples a view of a landmark plane.

    `mode` sets the parameter ranges; the final easy/hard/junk label still comes from
    `classify_view(measure_view(...))`, so a 'hard'-mode sample can end up easy.

    Args:
        rng: Random generator.
        mode: 'query' (centred, clean, mild viewpoint), 'easy', 'hard' or 'junk'
            (landmark pushed mostly out of the frame).
        image_size: Long side of the view in pixels.
        plane_size: Landmark plane (width, height) in pixels.

    Returns:
        The view's ViewParams.
    """
    if mode not in VIEW_MODES:
        raise ValueError(f"view mode must be one of {VIEW_MODES}, got {mode!r}")
    aw, ah = _ASPECTS[int(rng.integers(len(_ASPECTS)))]
    if aw >= ah:
        width, height = image_size, max(8, round(image_size * ah / aw))
    else:
        width, height = max(8, round(image_size * aw / ah)), image_size
    sym = lambda m: float(rng.uniform(-m, m))
    if mode == "query":
        zoom, yaw, pitch, roll = rng.uniform(0.5, 0.75), sym(15), sym(8), sym(4)
        shift_x, shift_y, strength = sym(0.1), sym(0.1), 0.3
    elif mode == "easy":
        zoom, yaw, pitch, roll = rng.uniform(0.55, 0.95), sym(20), sym(10), sym(6)
        shift_x, shift_y, strength = sym(0.12), sym(0.12), 0.4
    elif mode == "hard":
        zoom = float(np.exp(rng.uniform(np.log(0.3), np.log(1.7))))
        yaw = float(rng.choice([-1, 1]) * rng.uniform(10, 50))
        pitch, roll, shift_x, shift_y, strength = sym(25), sym(20), sym(0.3), sym(0.3), 1.0
    else:  # junk: the landmark centre sits outside the frame
        zoom, yaw, pitch, roll = rng.uniform(0.3, 1.2), sym(40), sym(20), sym(15)
        shift_x = float(rng.choice([-1, 1]) * rng.uniform(0.6, 0.95))
        shift_y, strength = sym(0.6), 1.0
        if rng.uniform() < 0.5:
            shift_x, shift_y = shift_y, shift_x
    occluders = _sample_occluders(rng, mode, width, height)
    params = ViewParams(
        width, height, float(zoom), float(yaw), float(pitch), float(roll),
        float(shift_x), float(shift_y), occluders, strength,
    )  # fmt: skip
    # Keep the whole plane well in front of the camera (no extreme foreshortening).
    while _min_depth_ratio(params, plane_size) < 0.3:
        params = dataclasses.replace(
            params, yaw_deg=params.yaw_deg * 0.8, pitch_deg=params.pitch_deg * 0.8
        )
    return params


def render_background(
    rng: np.random.Generator,
    size: tuple[int, int],
    photos: Sequence[Image.Image],
    textures: Sequence[Image.Image],
) -> Image.Image:
    """A random street scene without the landmark: sky, ground and neighbouring buildings."""
    w, h = size
    horizon = int(h * rng.uniform(0.35, 0.75))
    sky = synthetic_scenes.random_palette(rng, 2)
    top = np.array(sky[0], np.float32) * 0.4 + np.array([150, 170, 200], np.float32) * 0.6
    low = np.array(sky[1], np.float32) * 0.3 + np.array([225, 225, 230], np.float32) * 0.7
    t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    image = Image.fromarray(
        np.broadcast_to(top * (1 - t) + low * t, (h, w, 3)).astype(np.uint8), mode="RGB"
    )
    ground = synthetic_scenes.random_crop(
        rng, textures[int(rng.integers(len(textures)))], (w, max(1, h - horizon))
    )
    ground = synthetic_scenes.tint(ground, (40, 35, 30), (170, 160, 140), rng.uniform(0.5, 0.9))
    image.paste(ground, (0, horizon))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(1, 4))):  # neighbouring buildings
        bw, bh = int(w * rng.uniform(0.15, 0.45)), int(h * rng.uniform(0.2, 0.6))
        x0 = int(rng.integers(-bw // 2, w - bw // 2))
        y0 = max(0, horizon - bh)
        pal = synthetic_scenes.random_palette(rng, 2)
        if rng.uniform() < 0.5:
            patch = synthetic_scenes.random_crop(
                rng, photos[int(rng.integers(len(photos)))], (bw, horizon - y0 + 1)
            )
            image.paste(synthetic_scenes.tint(patch, (30, 30, 30), pal[0], 0.6), (x0, y0))
        else:
            draw.rectangle((x0, y0, x0 + bw, horizon), fill=pal[0])
            step = max(4, bw // int(rng.integers(3, 7)))
            for x in range(x0 + step // 3, x0 + bw - step // 2, step):
                for y in range(y0 + step // 3, horizon - step // 2, step):
                    draw.rectangle((x, y, x + step // 2, y + step // 2), fill=pal[1])
    return image


def _pyramid_level(plane: Image.Image, hom: np.ndarray) -> tuple[Image.Image, np.ndarray]:
    """Pre-shrinks the plane when the view shrinks it a lot (bilinear warps would alias)."""
    cx, cy = plane.width / 2, plane.height / 2
    probe = np.array([[cx, cy], [cx + 1, cy], [cx, cy + 1]])
    p = apply_homography(hom, probe)
    (ax, ay), (bx, by) = p[1] - p[0], p[2] - p[0]
    scale = float(np.sqrt(abs(ax * by - ay * bx)))
    if scale >= 0.7:
        return plane, hom
    factor = max(scale * 1.4, 1 / 16)
    size = (max(2, round(plane.width * factor)), max(2, round(plane.height * factor)))
    small = plane.resize(size, Image.Resampling.LANCZOS)
    sx, sy = plane.width / size[0], plane.height / size[1]
    return small, hom @ np.diag([sx, sy, 1.0])


def _photometric(rng: np.random.Generator, image: Image.Image, strength: float) -> Image.Image:
    """Exposure, contrast, saturation, colour cast, blur and sensor noise."""
    s = strength
    x = np.asarray(image, np.float32) / 255.0
    gray = x.mean(axis=2, keepdims=True)
    x = gray + (x - gray) * rng.uniform(1 - 0.6 * s, 1 + 0.5 * s)  # saturation
    x = x * (1 + rng.uniform(-0.25, 0.25, size=3).astype(np.float32) * s)  # white balance
    x = (x - 0.5) * rng.uniform(1 - 0.35 * s, 1 + 0.25 * s) + 0.5  # contrast
    x = x * rng.uniform(1 - 0.35 * s, 1 + 0.25 * s)  # exposure
    x = np.clip(x, 0, 1) ** rng.uniform(1 - 0.3 * s, 1 + 0.4 * s)  # gamma
    out = Image.fromarray((x * 255 + 0.5).astype(np.uint8), mode="RGB")
    radius = rng.uniform(0, 1.6 * s)
    if radius > 0.3:
        out = out.filter(ImageFilter.GaussianBlur(radius))
    sigma = rng.uniform(0, 6 * s)
    noisy = np.asarray(out, np.float32) + rng.normal(0, sigma, (out.height, out.width, 1))
    return Image.fromarray(np.clip(noisy + 0.5, 0, 255).astype(np.uint8), mode="RGB")


def _draw_occluders(rng, image, params, photos) -> None:
    for occ in params.occluders:
        x0, y0, x1, y1 = (round(v) for v in occ.box)
        if x1 - x0 < 2 or y1 - y0 < 2:
            continue
        mask = Image.new("L", (x1 - x0, y1 - y0), 0)
        md = ImageDraw.Draw(mask)
        if occ.shape == "ellipse":
            md.ellipse((0, 0, x1 - x0 - 1, y1 - y0 - 1), fill=255)
        else:
            md.rectangle((0, 0, x1 - x0, y1 - y0), fill=255)
        if occ.shape != "pole" and rng.uniform() < 0.6:  # textured: foliage, people, cars
            patch = synthetic_scenes.random_crop(
                rng, photos[int(rng.integers(len(photos)))], mask.size
            )
            pal = synthetic_scenes.random_palette(rng, 1)
            patch = synthetic_scenes.tint(patch, (10, 10, 10), pal[0], 0.6)
        else:
            patch = Image.new("RGB", mask.size, synthetic_scenes.random_palette(rng, 1)[0])
        image.paste(patch, (x0, y0), mask)


def render_view(
    rng: np.random.Generator,
    plane: Image.Image | None,
    params: ViewParams,
    photos: Sequence[Image.Image],
    textures: Sequence[Image.Image],
    palette: Sequence[tuple[int, int, int]] | None = None,
) -> Image.Image:
    """Renders one photograph.

    Args:
        rng: Random generator for background, occluder textures and photometric changes.
        plane: The landmark plane (RGB), or None for an image without a landmark.
        params: The view (its geometry must have been sampled for this plane's size).
        photos: Source photographs.
        textures: Surface textures.
        palette: Colours of the clutter drawn when `plane` is None (None: random).

    Returns:
        RGB image `[params.height, params.width, 3]`.
    """
    size = (params.width, params.height)
    image = render_background(rng, size, photos, textures)
    if plane is not None:
        source, hom = _pyramid_level(plane, view_homography(params, plane.size))
        inv = np.linalg.inv(hom)
        coeffs = tuple(float(v) for v in (inv / inv[2, 2]).ravel()[:8])
        warped = source.transform(size, Image.Transform.PERSPECTIVE, coeffs,
                                  Image.Resampling.BILINEAR)  # fmt: skip
        alpha = Image.new("L", source.size, 255).transform(
            size, Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BILINEAR
        )
        image.paste(warped, (0, 0), alpha)
    else:  # street furniture, posters, shop signs: clutter that is not a landmark
        palette = palette or synthetic_scenes.random_palette(rng, 4)
        count = int(rng.integers(2, 5))
        synthetic_scenes.draw_elements(rng, image, palette, photos, count, 0.1, 0.35)
    _draw_occluders(rng, image, params, photos)
    return _photometric(rng, image, params.strength)
