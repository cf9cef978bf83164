"""The demo's figures: training curves, a query with its top results, attention heatmaps."""

from __future__ import annotations

import json
import os

from delg_tf.demo.paths import Paths
from delg_tf.demo.report_markdown import ATTENTION_IMAGES

# Results shown next to the query in query_matches.png.
TOP_K = 5


def write_figures(paths: Paths, log_path: str) -> str:
    """Writes the PNGs of the trained model's run into `paths.figures_dir`.

    Needs the trained logdir, export and feature stores. Writes training_curves.png,
    query_matches.png (the first query, its top `TOP_K` results and the inliers with the first)
    and attention_<i>_<name>.png for the query and its first results.

    Args:
      paths: the demo's folders.
      log_path: where the stage's log (the query figure's ranking, keypoint counts) goes.

    Returns:
      A short summary for the stage line: the number of PNGs.
    """
    # TensorFlow and matplotlib load only when this stage runs.
    from delg_tf.data.revisited_ground_truth import load_ground_truth
    from delg_tf.visualization import match_figure, training_curves
    from delg_tf.visualization.attention_map import visualize_attention

    os.makedirs(paths.figures_dir, exist_ok=True)
    log = []
    training_curves.write_training_curves(
        paths.logdir("trained"),
        os.path.join(paths.figures_dir, "training_curves.png"),
        title="DELG demo training",
    )
    gt = load_ground_truth(paths.gnd_path)
    query = match_figure.write_query_figure(
        gt,
        paths.images_dir,
        paths.features("trained", "query"),
        paths.features("trained", "index"),
        os.path.join(paths.figures_dir, "query_matches.png"),
        query=0,
        top_k=TOP_K,
    )
    log.append(f"query figure: {json.dumps(query)}")
    # Attention of the query and its first two results (full images).
    names = [query["query"], *(name for name, _, _ in query["top"])][:ATTENTION_IMAGES]
    for i, name in enumerate(names):
        count = visualize_attention(
            paths.export("trained"),
            os.path.join(paths.images_dir, name + ".jpg"),
            os.path.join(paths.figures_dir, f"attention_{i}_{name}.png"),
        )
        log.append(f"attention {name}: {count} keypoints")
    with open(log_path, "w", encoding="utf-8") as f:
        f.write("\n".join(log) + "\n")
    return f"{len(os.listdir(paths.figures_dir))} PNGs"
