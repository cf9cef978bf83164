import numpy as np
import pytest
from PIL import Image

from delg_tf.retrieval.reranking import count_inliers
from delg_tf.visualization import match_figure


def _features(rng, n_true=30, n_outliers=10):
    """A query and an index image whose first n_true matches follow one affine map."""
    n = n_true + n_outliers
    descriptors = rng.normal(size=(n, 16)).astype(np.float32)
    descriptors /= np.linalg.norm(descriptors, axis=1, keepdims=True)
    query_yx = rng.uniform(0, 200, size=(n, 2)).astype(np.float32)
    a = np.array([[0.9, 0.1], [-0.2, 1.1]], np.float32)
    index_yx = query_yx @ a.T + np.array([15.0, -7.0], np.float32)
    # Outliers: far from where the affine map would put them.
    index_yx[n_true:] = query_yx[n_true:] @ a.T + rng.uniform(150, 300, size=(n_outliers, 2))
    query = {"descriptors": descriptors, "locations": query_yx}
    index = {"descriptors": descriptors.copy(), "locations": index_yx}
    return query, index


def test_inlier_matches_keeps_exactly_the_affine_correspondences():
    query, index = _features(np.random.default_rng(0))
    matches = match_figure.inlier_matches(query, index)
    assert matches.num_putative == 40
    assert matches.num_inliers == 30
    # The re-ranking's count is the count drawn.
    assert count_inliers(query, index) == 30
    np.testing.assert_allclose(matches.query_points, query["locations"][:30])
    np.testing.assert_allclose(matches.index_points, index["locations"][:30])


def test_inlier_matches_is_empty_with_three_or_fewer_putative_matches():
    query, index = _features(np.random.default_rng(1), n_true=3, n_outliers=0)
    matches = match_figure.inlier_matches(query, index)
    assert (matches.num_putative, matches.num_inliers) == (3, 0)
    assert matches.query_points.shape == (0, 2)


def test_match_figure_renders_a_png(tmp_path):
    rng = np.random.default_rng(2)
    query, index = _features(rng)
    matches = match_figure.inlier_matches(query, index)
    image = rng.integers(0, 255, size=(220, 240, 3), dtype=np.uint8)
    results = [
        match_figure.Result(image, "a", 1, "positive", 30),
        match_figure.Result(image, "b", 2, "junk", 4),
        match_figure.Result(image, "c", 3, "negative", None),
    ]
    figure = match_figure.match_figure(image, "q", results, results[0], matches, title="t")
    out = tmp_path / "m.png"
    figure.savefig(out, format="png")
    with Image.open(out) as png:
        assert png.format == "PNG"
        assert png.size == (960, 820)
    # One connection line per inlier, capped at max_lines.
    assert len(figure.artists) == 30
    capped = match_figure.match_figure(image, "q", results, results[0], matches, max_lines=7)
    assert len(capped.artists) == 7


def _title_boxes(figure):
    """(title, its axes) window extents of every titled axes, after drawing."""
    renderer = figure.canvas.get_renderer()
    return [
        (axis.title.get_window_extent(renderer), axis.get_window_extent(renderer))
        for axis in figure.axes
        if axis.title.get_text()
    ]


@pytest.mark.parametrize("k", [1, 12])
def test_titles_stay_inside_their_axes_and_do_not_overlap(k):
    """Issue 12: the figure's titles must fit for any number of results, long names too."""
    query, index = _features(np.random.default_rng(0))
    image = np.zeros([200, 260, 3], np.uint8)
    results = [
        match_figure.Result(
            image, f"a_rather_long_landmark_image_name_{i:04d}", i + 1, "positive", 30
        )  # fmt: skip
        for i in range(k)
    ]
    matches = match_figure.inlier_matches(query, index)
    figure = match_figure.match_figure(
        image, "query_with_a_long_name_0001", results, results[0], matches, title="top k"
    )
    figure.canvas.draw()
    boxes = _title_boxes(figure)
    assert len(boxes) == k + 3  # query, k results, the two match panels
    for title, axis in boxes:
        assert axis.x0 - 1 <= title.x0 and title.x1 <= axis.x1 + 1, (title, axis)
        assert title.y0 >= axis.y1 - 1  # above its image
    titles = [title for title, _ in boxes]
    for i, a in enumerate(titles):
        for b in titles[i + 1 :]:
            assert not a.overlaps(b), (a, b)
    suptitle = figure._suptitle.get_window_extent(figure.canvas.get_renderer())
    assert all(not suptitle.overlaps(t) for t in titles)
