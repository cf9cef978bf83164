"""One query with its top retrieved images and the RANSAC inlier matches drawn, as a PNG.

Top row: the query (cropped to its bbx, as it was searched) and its top-k results after
re-ranking, each titled with its rank, inlier count and ground-truth label, framed green for a
positive, orange for junk and red for a negative. Bottom row: the query next to one result with a
line for every inlier correspondence of the affine RANSAC that verified it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import ConnectionPatch

from delg_tf.retrieval.ransac import ransac_affine
from delg_tf.retrieval.reranking import (
    DEFAULT_CONFIG,
    MIN_RANSAC_SAMPLES,
    LocalFeatures,
    VerificationConfig,
    putative_matches,
)

# Frame colours by ground-truth label of a result.
LABEL_COLORS = {"positive": "#1a9850", "junk": "#f39c12", "negative": "#d73027"}
UNLABELLED = "unlabelled"  # no ground truth (delg-visualize on two stores): a gray frame
_MIN_TITLE_SIZE = 5.0


@dataclasses.dataclass(frozen=True)
class InlierMatches:
    """The verified correspondences between a query and an index image.

    Attributes:
      query_points: [K, 2] (y, x) query locations of the inliers, in query-image pixels.
      index_points: [K, 2] (y, x) index locations of the same inliers.
      num_putative: putative matches before RANSAC.
    """

    query_points: np.ndarray
    index_points: np.ndarray
    num_putative: int

    @property
    def num_inliers(self) -> int:
        return int(self.query_points.shape[0])


def inlier_matches(
    query: LocalFeatures, index: LocalFeatures, config: VerificationConfig = DEFAULT_CONFIG
) -> InlierMatches:
    """Matches two images' local features and keeps the affine RANSAC inliers.

    The same matching and RANSAC (arguments, seed) as `reranking.count_inliers`, so the count
    drawn is the count the re-ranking used.

    Args:
      query, index: dicts with `descriptors` [N, d] and `locations` [N, 2] (y, x).
      config: matching and RANSAC settings.

    Returns:
      The inlier correspondences (none when there are <= 3 putative matches).
    """
    matches = putative_matches(query, index, config)
    empty = np.zeros((0, 2), np.float32)
    if matches.shape[0] <= MIN_RANSAC_SAMPLES:
        return InlierMatches(empty, empty, int(matches.shape[0]))
    query_points = np.asarray(query["locations"], np.float32)[matches[:, 0]]
    index_points = np.asarray(index["locations"], np.float32)[matches[:, 1]]
    result = ransac_affine(
        index_points,
        query_points,
        residual_threshold=config.ransac_residual_threshold,
        max_trials=config.ransac_max_trials,
        stop_probability=config.ransac_stop_probability,
        seed=config.ransac_seed,
    )
    mask = np.asarray(result.inliers, bool)
    return InlierMatches(query_points[mask], index_points[mask], int(matches.shape[0]))


@dataclasses.dataclass(frozen=True)
class Result:
    """One retrieved image to draw.

    Attributes:
      image: uint8 [H, W, 3].
      name: image name.
      rank: 1-based rank after re-ranking.
      label: "positive", "junk", "negative" or `UNLABELLED`.
      num_inliers: inliers found by re-ranking (None if it was not verified).
    """

    image: np.ndarray
    name: str
    rank: int
    label: str
    num_inliers: int | None = None


def _frame(axis, color: str) -> None:
    axis.set_xticks([])
    axis.set_yticks([])
    for spine in axis.spines.values():
        spine.set_edgecolor(color)
        spine.set_linewidth(4)


def match_figure(
    query_image: np.ndarray,
    query_name: str,
    results: Sequence[Result],
    matched: Result,
    matches: InlierMatches,
    title: str = "",
    max_lines: int = 200,
) -> Figure:
    """Draws the query, its top results, and the inliers between the query and `matched`.

    Args:
      query_image: uint8 [H, W, 3], the query as searched (cropped).
      query_name: its name.
      results: top results, best first.
      matched: the result whose inliers are drawn (usually the first of `results`).
      matches: inliers between the query and `matched` (query and `matched` pixels).
      title: figure title.
      max_lines: at most this many inlier lines (evenly subsampled) so the figure stays legible.

    Returns:
      A matplotlib Figure with an Agg canvas.
    """
    columns = max(len(results) + 1, 2)
    figure = Figure(figsize=(2.4 * columns, 8.2), dpi=100)
    FigureCanvasAgg(figure)
    grid = figure.add_gridspec(2, columns, height_ratios=(1, 1.6))
    axis = figure.add_subplot(grid[0, 0])
    axis.imshow(query_image)
    axis.set_title(f"query\n{query_name}", fontsize=8)
    _frame(axis, "#2c7bb6")
    for column, result in enumerate(results, start=1):
        axis = figure.add_subplot(grid[0, column])
        axis.imshow(result.image)
        inliers = "not verified" if result.num_inliers is None else f"{result.num_inliers} inliers"
        label = "" if result.label == UNLABELLED else f" {result.label}"
        axis.set_title(f"#{result.rank}{label} {result.name}\n{inliers}", fontsize=8)
        _frame(axis, LABEL_COLORS.get(result.label, "gray"))

    half = columns // 2
    left = figure.add_subplot(grid[1, :half])
    right = figure.add_subplot(grid[1, half:])
    left.imshow(query_image)
    left.set_title(f"query {query_name}", fontsize=9)
    right.imshow(matched.image)
    right.set_title(
        f"#{matched.rank} {matched.name} ({matched.label}): {matches.num_inliers} inliers of "
        f"{matches.num_putative} putative matches",
        fontsize=9,
    )
    for axis in (left, right):
        axis.set_xticks([])
        axis.set_yticks([])
    keep = np.arange(matches.num_inliers)
    if keep.size > max_lines:
        keep = np.linspace(0, keep.size - 1, max_lines).round().astype(int)
    colors = _line_colors(keep.size)
    for color, i in zip(colors, keep, strict=True):
        (qy, qx), (iy, ix) = matches.query_points[i], matches.index_points[i]
        figure.add_artist(
            ConnectionPatch(
                xyA=(qx, qy),
                coordsA=left.transData,
                xyB=(ix, iy),
                coordsB=right.transData,
                color=color,
                linewidth=0.8,
                alpha=0.8,
            )
        )
        left.plot(qx, qy, "o", color=color, markersize=2.5)
        right.plot(ix, iy, "o", color=color, markersize=2.5)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    _fit_titles(figure)
    return figure


def _fit_titles(figure: Figure) -> None:
    """Shrinks, then wraps, every axes title wider than its axes (long names, many results).

    The text extents come from the Agg renderer, so the check is the one a test can make.
    """
    renderer = figure.canvas.get_renderer()
    for axis in figure.axes:
        title = axis.title
        if not title.get_text():
            continue
        width = axis.get_window_extent(renderer).width
        while title.get_window_extent(renderer).width > width and (
            title.get_fontsize() > _MIN_TITLE_SIZE
        ):
            title.set_fontsize(title.get_fontsize() - 0.5)
        lines = title.get_text().split("\n")
        while title.get_window_extent(renderer).width > width:
            longest = max(range(len(lines)), key=lambda i: len(lines[i]))
            line = lines[longest]
            if len(line) < 8:
                break
            cut = line.rfind(" ", 0, len(line) // 2 + 1)
            cut = cut if cut > 0 else len(line) // 2
            lines[longest : longest + 1] = [line[:cut].rstrip(), line[cut:].lstrip()]
            title.set_text("\n".join(lines))
    figure.tight_layout()


def _line_colors(count: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["hsv"]
    return [cmap(i / max(count, 1)) for i in range(count)]


def _label(position: int, entry: dict) -> str:
    if position in set(np.asarray(entry.get("easy", []), int)) | set(
        np.asarray(entry.get("hard", []), int)
    ):
        return "positive"
    if position in set(np.asarray(entry.get("junk", []), int)):
        return "junk"
    return "negative"


def write_query_figure(
    ground_truth: dict,
    images_dir: str,
    query_store_path: str,
    index_store_path: str,
    output_path: str,
    query: int = 0,
    top_k: int = 5,
    config: VerificationConfig = DEFAULT_CONFIG,
    num_to_rerank: int = 100,
    image_extension: str = ".jpg",
) -> dict:
    """Re-ranks one query (medium protocol) from feature stores and writes its match figure.

    Args:
      ground_truth: revisitop dict (`qimlist`, `imlist`, `gnd` with easy/hard/junk/bbx), as
        `delg_tf.data.revisited_ground_truth.load_ground_truth` returns it.
      images_dir: folder of `<name><image_extension>` for queries and index images.
      query_store_path, index_store_path: feature stores of the queries and the index.
      output_path: PNG to write.
      query: query number in `qimlist`.
      top_k: results drawn.
      config: matching and RANSAC settings (as the re-ranking evaluated).
      num_to_rerank: non-junk images verified.
      image_extension: extension of the image files.

    Returns:
      {"query": name, "top": [(name, label, inliers)], "matched_inliers": int}.
    """
    from delg_tf.evaluation import run as evaluation_run
    from delg_tf.extraction.feature_store import FeatureStore
    from delg_tf.extraction.image_inputs import ImageRecord, load_image
    from delg_tf.retrieval import store_retrieval

    query_names, index_names = ground_truth["qimlist"], ground_truth["imlist"]
    if not 0 <= query < len(query_names):
        raise ValueError(f"query {query} out of range: the ground truth has {len(query_names)}")
    entry = ground_truth["gnd"][query]
    query_store, index_store = FeatureStore(query_store_path), FeatureStore(index_store_path)
    similarities, ranks = store_retrieval.global_ranking(
        query_store, index_store, [query_names[query]], index_names
    )
    query_features = query_store.local_features(query_names[query])
    index_features = store_retrieval.local_features_by_position(index_store, index_names)
    junk = evaluation_run.protocol_junk([entry], ("medium",))["medium"][0]
    new_ranks, inliers = evaluation_run.rerank_query(
        ranks[0], similarities[0], query_features, index_features, junk, config, num_to_rerank
    )

    def image(name: str, bbox=None) -> np.ndarray:
        record = ImageRecord(name, f"{images_dir}/{name}{image_extension}", bbox)
        return load_image(record, -1)[0]  # full resolution: the features' pixel frame

    junk_set = {int(i) for i in np.asarray(junk).ravel()}
    # rerank verified the first num_to_rerank non-junk images of the global ranking.
    verified = set([int(i) for i in ranks[0] if int(i) not in junk_set][:num_to_rerank])
    results = []
    for rank, position in enumerate(new_ranks[:top_k], start=1):
        position = int(position)
        results.append(
            Result(
                image(index_names[position]),
                index_names[position],
                rank,
                _label(position, entry),
                int(inliers[position]) if position in verified else None,
            )
        )
    matched = results[0]
    matches = inlier_matches(query_features, index_features(int(new_ranks[0])), config)
    query_image = image(query_names[query], tuple(float(v) for v in entry["bbx"]))
    figure = match_figure(
        query_image,
        query_names[query],
        results,
        matched,
        matches,
        title=f"query {query_names[query]}: top {len(results)} after re-ranking (medium)",
    )
    figure.savefig(output_path, format="png")
    return {
        "query": query_names[query],
        "top": [(r.name, r.label, r.num_inliers) for r in results],
        "matched_inliers": matches.num_inliers,
    }


def write_store_figure(
    query_store_path: str,
    index_store_path: str,
    query_id: str,
    image_path: Callable[[str, str], str],
    output_path: str,
    top_k: int = 5,
    index_id: str | None = None,
    config: VerificationConfig = DEFAULT_CONFIG,
    num_to_rerank: int = 100,
) -> dict:
    """A query's match figure from two feature stores, without ground truth.

    The query is ranked against every image of the index store by global descriptor and the
    top `num_to_rerank` are re-ranked by RANSAC inliers (`evaluation.run.rerank_query`, the
    pipeline `delg-evaluate` runs); the figure shows its top `top_k`, or the one `index_id`,
    and the inliers with the first shown.

    Args:
      query_store_path, index_store_path: feature stores with global and local features.
      query_id: id in the query store.
      image_path: (id, "query" or "index") -> the image file whose pixels the features are in.
      output_path: PNG to write.
      top_k: results drawn (without `index_id`).
      index_id: draw the query against this index image only.
      config: matching and RANSAC settings.
      num_to_rerank: images verified.

    Returns:
      {"query": id, "top": [(id, rank, inliers or None)], "matched_inliers": int}.

    Raises:
      KeyError: an id missing from its store (the message says if its extraction failed).
      ValueError: a store without global or local features.
    """
    from delg_tf.evaluation import run as evaluation_run
    from delg_tf.extraction.feature_store import FeatureStore
    from delg_tf.extraction.image_inputs import ImageRecord, load_image
    from delg_tf.retrieval import store_retrieval

    query_store, index_store = FeatureStore(query_store_path), FeatureStore(index_store_path)
    for store in (query_store, index_store):
        if store.global_dim is None or store.local_dim is None:
            missing = "global descriptors" if store.global_dim is None else "local features"
            raise ValueError(f"feature store {store.path} has no {missing}")
    names = index_store.ids
    store_retrieval.store_rows(query_store, [query_id], "query")
    if index_id is not None:
        store_retrieval.store_rows(index_store, [index_id], "index image")
    similarities, ranks = store_retrieval.global_ranking(
        query_store, index_store, [query_id], names
    )
    query_features = query_store.local_features(query_id)
    index_features = store_retrieval.local_features_by_position(index_store, names)
    new_ranks, inliers = evaluation_run.rerank_query(
        ranks[0], similarities[0], query_features, index_features, [], config, num_to_rerank
    )
    verified = {int(i) for i in ranks[0][:num_to_rerank]}
    rank_of = {int(position): rank for rank, position in enumerate(new_ranks, start=1)}
    shown = [names.index(index_id)] if index_id is not None else new_ranks[:top_k]

    def image(image_id: str, role: str) -> np.ndarray:
        record = ImageRecord(image_id, image_path(image_id, role))
        return load_image(record, -1)[0]  # full resolution: the features' pixel frame

    results = [
        Result(
            image(names[int(p)], "index"),
            names[int(p)],
            rank_of[int(p)],
            UNLABELLED,
            int(inliers[int(p)]) if int(p) in verified else None,
        )
        for p in shown
    ]
    matched = results[0]
    matches = inlier_matches(query_features, index_features(int(shown[0])), config)
    what = f"#{matched.rank} {matched.name}" if index_id is not None else f"top {len(results)}"
    figure = match_figure(
        image(query_id, "query"),
        query_id,
        results,
        matched,
        matches,
        title=f"query {query_id}: {what} after re-ranking",
    )
    figure.savefig(output_path, format="png")
    return {
        "query": query_id,
        "top": [(r.name, r.rank, r.num_inliers) for r in results],
        "matched_inliers": matches.num_inliers,
    }
