"""Tests for synthetic_views: homography, geometry, the easy/hard/junk rule and rendering."""

import dataclasses

import numpy as np
import pytest
from PIL import Image

from delg_tf.demo.synthetic import photos as synthetic_photos
from delg_tf.demo.synthetic import scenes as synthetic_scenes
from delg_tf.demo.synthetic import views as synthetic_views
from delg_tf.demo.synthetic.views import Occluder, ViewGeometry, ViewParams, classify_view


def _geometry(visible=1.0, area=0.5, tilt=10.0, roll=0.0):
    return ViewGeometry(visible, area, tilt, roll, (0.0, 0.0, 10.0, 10.0))


@pytest.mark.parametrize(
    "geometry, expected",
    [
        (_geometry(), "easy"),
        (_geometry(visible=0.6), "easy"),  # boundary is inclusive
        (_geometry(visible=0.59), "hard"),  # partial overlap
        (_geometry(visible=0.25), "hard"),
        (_geometry(visible=0.24), "junk"),  # barely visible
        (_geometry(visible=0.0, area=0.0), "junk"),
        (_geometry(area=0.029), "junk"),  # fully visible but tiny in the image
        (_geometry(area=0.14), "hard"),  # small scale
        (_geometry(area=0.15), "easy"),
        (_geometry(tilt=30.0), "easy"),
        (_geometry(tilt=31.0), "hard"),  # strong viewpoint change
        (_geometry(roll=-10.0), "easy"),
        (_geometry(roll=-11.0), "hard"),  # strong in-plane rotation
        (_geometry(visible=0.3, tilt=60.0), "hard"),
    ],
)
def test_classify_view_rule(geometry, expected):
    assert classify_view(geometry) == expected


def _fronto(width=80, height=60, **kw):
    base = dict(zoom=1.0, yaw_deg=0.0, pitch_deg=0.0, roll_deg=0.0, shift_x=0.0, shift_y=0.0)
    base.update(kw)
    return ViewParams(width, height, **base)


def test_fronto_parallel_full_view_is_identity():
    params = _fronto()
    hom = synthetic_views.view_homography(params, (80, 60))
    np.testing.assert_allclose(hom, np.eye(3), atol=1e-9)
    g = synthetic_views.measure_view(params, (80, 60))
    assert g.visible_fraction == 1.0 and g.area_fraction == 1.0
    assert g.tilt_deg == pytest.approx(0.0) and g.bbox == (0.0, 0.0, 80.0, 60.0)


def test_zoom_and_shift_place_the_plane_corners():
    # Plane 160x120 in an 80x60 view at zoom 0.5: scale 0.25, centred, then shifted by 10% W.
    params = _fronto(zoom=0.5, shift_x=0.1)
    hom = synthetic_views.view_homography(params, (160, 120))
    corners = synthetic_views.apply_homography(hom, np.array([[0, 0], [160, 120.0]]))
    np.testing.assert_allclose(corners, [[20 + 8, 15], [60 + 8, 45]], atol=1e-9)


def test_half_out_of_frame_and_occlusion_halve_visibility():
    shifted = synthetic_views.measure_view(_fronto(shift_x=0.5), (80, 60))
    assert shifted.visible_fraction == pytest.approx(0.5)
    assert shifted.area_fraction == pytest.approx(0.5)
    assert shifted.bbox == (40.0, 0.0, 80.0, 60.0)
    occluded = _fronto(occluders=(Occluder("rectangle", (0.0, 0.0, 39.0, 59.0)),))
    g = synthetic_views.measure_view(occluded, (80, 60))
    assert g.visible_fraction == pytest.approx(0.5)
    assert g.area_fraction == pytest.approx(0.5)
    assert g.bbox == (0.0, 0.0, 80.0, 60.0)  # the landmark region includes occluded parts


def test_tilt_is_the_out_of_plane_angle():
    g = synthetic_views.measure_view(_fronto(zoom=0.5, yaw_deg=35.0), (80, 60))
    assert g.tilt_deg == pytest.approx(35.0)
    g = synthetic_views.measure_view(_fronto(zoom=0.5, roll_deg=20.0), (80, 60))
    assert g.tilt_deg == pytest.approx(0.0) and g.roll_deg == 20.0


def test_easy_mode_is_never_junk_and_junk_mode_mostly_junk():
    rng = np.random.default_rng(0)
    labels = {"easy": [], "junk": []}
    for mode in labels:
        for _ in range(150):
            plane = synthetic_scenes.landmark_plane_size(rng, 96)
            params = synthetic_views.sample_view_params(rng, mode, 64, plane)
            labels[mode].append(classify_view(synthetic_views.measure_view(params, plane)))
    assert "junk" not in labels["easy"]
    assert labels["junk"].count("junk") > 0.5 * len(labels["junk"])


def test_sample_view_params_rejects_unknown_mode():
    with pytest.raises(ValueError, match="'wide'"):
        synthetic_views.sample_view_params(np.random.default_rng(0), "wide", 64, (64, 64))


def _ncc(a, b, mask):
    a, b = a[mask], b[mask]
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum() + 1e-12))


def _warp_back(view, hom, plane_size):
    """Resamples a view into plane coordinates with the true homography (plane -> view)."""
    coeffs = tuple(float(v) for v in (hom / hom[2, 2]).ravel()[:8])
    back = view.transform(plane_size, Image.Transform.PERSPECTIVE, coeffs)
    return np.asarray(back.convert("L").resize((32, 32), Image.Resampling.BOX), np.float64)


def test_views_warped_back_match_their_own_landmark():
    """A rendered view, warped back through its homography, matches its landmark's plane far
    better than another landmark's plane (fails if rendering and geometry disagree)."""
    photos, textures = synthetic_photos.load_photos(), synthetic_photos.load_textures()
    size = (120, 96)
    planes = [
        synthetic_scenes.compose_landmark(np.random.default_rng(s), size, photos, textures)
        for s in (1, 2)
    ]
    small = [
        np.asarray(p.convert("L").resize((32, 32), Image.Resampling.BOX), float) for p in planes
    ]
    rng = np.random.default_rng(7)
    for k in range(4):
        params = synthetic_views.sample_view_params(rng, "easy", 112, size)
        params = dataclasses.replace(params, occluders=())
        view = synthetic_views.render_view(rng, planes[k % 2], params, photos, textures)
        hom = synthetic_views.view_homography(params, size)
        back = _warp_back(view, hom, size)
        # Compare only plane cells that lie fully inside the view.
        mask = _warp_back(Image.new("RGB", view.size, "white"), hom, size) > 250
        assert mask.mean() > 0.5
        own, other = _ncc(back, small[k % 2], mask), _ncc(back, small[1 - k % 2], mask)
        assert own > 0.8, (k, own)
        assert own > other + 0.4, (k, own, other)


def test_render_view_is_deterministic_and_sized():
    photos, textures = synthetic_photos.load_photos(), synthetic_photos.load_textures()
    plane = synthetic_scenes.compose_landmark(np.random.default_rng(3), (64, 48), photos, textures)
    params = synthetic_views.sample_view_params(np.random.default_rng(4), "hard", 72, plane.size)
    a = synthetic_views.render_view(np.random.default_rng(5), plane, params, photos, textures)
    b = synthetic_views.render_view(np.random.default_rng(5), plane, params, photos, textures)
    c = synthetic_views.render_view(np.random.default_rng(6), plane, params, photos, textures)
    assert a.size == (params.width, params.height) and max(a.size) == 72
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(c))
    none = synthetic_views.render_view(np.random.default_rng(5), None, params, photos, textures)
    assert none.size == a.size
