"""The demo's training-free comparison: global, alpha-QE, DBA, DBA + alpha-QE, SuperGlobal, each
alone and followed by RANSAC, on the trained model's feature stores (issue 16's table)."""

from __future__ import annotations

import json
import os

from delg_tf.demo.paths import Paths

COMPARISON_JSON = "comparison.json"
COMPARISON_MD = "comparison.md"
TITLE = "Training-free re-ranking on the demo test set (trained model)"


def comparison_dir(paths: Paths) -> str:
    """Where the comparison's JSON and markdown table go."""
    return paths.evaluation("training_free")


def write_training_free_comparison(paths: Paths, num_to_rerank: int, log_path: str) -> str:
    """Scores the five first-stage configurations, alone and + RANSAC, and writes the table.

    Args:
      paths: the demo's folders (the trained feature stores and the ground truth must exist).
      num_to_rerank: images RANSAC verifies per query (as the demo's evaluate_trained stage).
      log_path: the stage's log (the table is written there too).

    Returns:
      A short summary for the stage line.
    """
    from delg_tf.common.atomic_files import write_json_atomically, write_text_atomically
    from delg_tf.data.revisited_ground_truth import load_ground_truth
    from delg_tf.evaluation import comparison, run
    from delg_tf.retrieval.reranking import VerificationConfig

    out = comparison_dir(paths)
    os.makedirs(out, exist_ok=True)
    gt = load_ground_truth(paths.gnd_path)
    stores = run.open_stores(paths.features("trained", "query"), paths.features("trained", "index"))
    rows = comparison.compare_training_free(
        gt,
        *stores,
        comparison.default_configurations(),
        VerificationConfig(),
        num_to_rerank,
    )
    write_json_atomically(os.path.join(out, COMPARISON_JSON), rows, indent=2)
    table = comparison.markdown_table(rows)
    write_text_atomically(os.path.join(out, COMPARISON_MD), table)
    with open(log_path, "w", encoding="utf-8") as f:
        f.write(table + "\n" + json.dumps(rows) + "\n")
    best = max(rows, key=lambda r: r["metrics"]["hard"]["mAP"])
    return f"best hard mAP {100 * best['metrics']['hard']['mAP']:.2f} ({best['name']})"


def comparison_section(paths: Paths) -> str:
    """The report's markdown section with the table, or "" when the stage has not run."""
    path = os.path.join(comparison_dir(paths), COMPARISON_MD)
    if not os.path.exists(path):
        return ""
    with open(path, encoding="utf-8") as f:
        table = f.read()
    return (
        f"\n## {TITLE}\n\n"
        "First stage: global search, then the training-free methods on the stored global "
        "descriptors (alpha-QE k=10 alpha=3; alpha-DBA k=10 alpha=3; SuperGlobal M=400 K=9 "
        "beta=0.15); '+ransac' re-ranks its top images by local matching + RANSAC. ms/query: "
        "global search plus the method (the RANSAC part measured once, on the global ranking). "
        f"Source: `{os.path.join(comparison_dir(paths), COMPARISON_JSON)}`.\n\n" + table
    )
