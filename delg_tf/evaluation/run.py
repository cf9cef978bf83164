"""The evaluation pipeline: feature stores + ground truth -> ranks, re-ranked ranks, metrics.

What `delg-evaluate` runs and what the match figure needs for its one query, in one place:
global ranking by descriptor inner product (as the official `perform_retrieval.py`), optional
geometric re-ranking of each protocol's top images (junk skipped), Revisited metrics for the
medium and hard protocols, and the outputs (`metrics.txt` in the official format, `metrics.json`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from delg_tf.evaluation import revisited
from delg_tf.extraction.feature_store import FeatureStore
from delg_tf.retrieval import store_retrieval
from delg_tf.retrieval.reranking import (
    NUM_TO_RERANK,
    VerificationConfig,
    make_inlier_counter,
    rerank,
)

_LOG = logging.getLogger(__name__)

PROTOCOLS = ("medium", "hard")
KAPPAS = revisited.DEFAULT_KAPPAS


@dataclasses.dataclass(frozen=True)
class EvaluationConfig:
    """What to score beyond the global ranking.

    Attributes:
      verification: local matching + RANSAC settings; None scores the global ranking only.
      num_to_rerank: non-junk images verified per query and protocol.
    """

    verification: VerificationConfig | None = None
    num_to_rerank: int = NUM_TO_RERANK


@dataclasses.dataclass
class EvaluationResult:
    """Rankings and metrics of one evaluation.

    Attributes:
      similarities: [Q, N] float32 global similarity per index position.
      ranks: [Q, N] int64 global ranking (positions in the ground truth's `imlist`, best first).
      reranked: {protocol: [Q, N] ranks after geometric verification}, empty without it.
      metrics: {"medium", "hard"[, "medium_after_gv", "hard_after_gv"]: revisited metrics}.
    """

    similarities: np.ndarray
    ranks: np.ndarray
    reranked: dict[str, np.ndarray]
    metrics: dict[str, dict[str, Any]]


def open_stores(query_dir: str, index_dir: str) -> tuple[FeatureStore, FeatureStore]:
    """Opens the query and index feature stores, warning about unfinished extractions."""
    query_store, index_store = FeatureStore(query_dir), FeatureStore(index_dir)
    for store in (query_store, index_store):
        if not store.complete:
            _LOG.warning("%s: extraction did not finish (manifest not complete)", store.path)
    return query_store, index_store


def protocol_junk(
    gnd: Sequence[Mapping[str, Any]], protocols: Sequence[str] = PROTOCOLS
) -> dict[str, list[np.ndarray]]:
    """{protocol: per-query junk index positions} from revisitop ground-truth entries."""
    return {p: [revisited.protocol_ground_truth(entry, p)[1] for entry in gnd] for p in protocols}


def rerank_query(
    ranks: np.ndarray,
    scores: np.ndarray,
    query_features: Mapping[str, np.ndarray],
    index_features: Callable[[int], Mapping[str, np.ndarray]],
    junk: Sequence[int] | np.ndarray,
    config: VerificationConfig,
    num_to_rerank: int = NUM_TO_RERANK,
) -> tuple[np.ndarray, np.ndarray]:
    """Geometric re-ranking of one query's ranking under one junk set.

    Args:
      ranks: [N] index positions, best first.
      scores: [N] score per index position (ties of inliers are ordered by it).
      query_features: the query's local features (descriptors, locations).
      index_features: index position -> local features.
      junk: index positions not verified.
      config: matching and RANSAC settings.
      num_to_rerank: non-junk images verified from the top of `ranks`.

    Returns:
      new ranks [N] and inliers [N] per index position.
    """
    counter = make_inlier_counter(query_features, index_features, config)
    return rerank(ranks, scores, counter, junk, num_to_rerank)


def evaluate(
    ground_truth: Mapping[str, Any],
    query_store: FeatureStore,
    index_store: FeatureStore,
    config: EvaluationConfig = EvaluationConfig(),
    progress: Callable[[], None] | None = None,
) -> EvaluationResult:
    """Ranks, optionally re-ranks, and scores every query of a Revisited ground truth.

    Args:
      ground_truth: revisitop dict (`qimlist`, `imlist`, `gnd`), as `load_ground_truth` returns.
      query_store, index_store: feature stores holding every query / index name.
      config: what to score beyond the global ranking.
      progress: called once per re-ranked query.

    Returns:
      The rankings and the metrics.

    Raises:
      KeyError: naming a ground-truth image missing from its store.
    """
    similarities, ranks = store_retrieval.global_ranking(
        query_store, index_store, ground_truth["qimlist"], ground_truth["imlist"]
    )
    metrics_all = revisited.compute_metrics(ranks, ground_truth["gnd"], KAPPAS)
    metrics = {p: metrics_all[p] for p in PROTOCOLS}
    reranked: dict[str, np.ndarray] = {}
    if config.verification is not None:
        by_position = store_retrieval.local_features_by_position
        reranked = store_retrieval.rerank_queries(
            ranks,
            similarities,
            by_position(query_store, ground_truth["qimlist"], "query"),
            by_position(index_store, ground_truth["imlist"], "index"),
            protocol_junk(ground_truth["gnd"]),
            config.verification,
            config.num_to_rerank,
            progress=progress,
        )
        for p in PROTOCOLS:
            metrics[f"{p}_after_gv"] = revisited.compute_metrics(
                reranked[p], ground_truth["gnd"], KAPPAS
            )[p]
    return EvaluationResult(similarities, ranks, reranked, metrics)


def json_metrics(metrics: Mapping[str, Mapping[str, Any]]) -> dict:
    """Metrics as JSON-ready floats (NaN, a protocol without positives, becomes null)."""

    def clean(value):
        value = np.asarray(value, dtype=np.float64)
        return [None if np.isnan(v) else float(v) for v in value.reshape(-1)]

    return {
        name: {
            "mAP": clean(entry["mAP"])[0],
            "mP@k": clean(entry["mP@k"]),
            "mR@k": clean(entry["mR@k"]),
            "aps": clean(entry["aps"]),
        }
        for name, entry in metrics.items()
    }


def write_outputs(output_dir: str, metrics: Mapping[str, Mapping[str, Any]]) -> None:
    """Writes `metrics.txt` (official format) and `metrics.json` to `output_dir`."""
    import json

    revisited.save_metrics_file(os.path.join(output_dir, "metrics.txt"), metrics, KAPPAS)
    with open(os.path.join(output_dir, "metrics.json"), "w") as f:
        json.dump({"kappas": list(KAPPAS), "metrics": json_metrics(metrics)}, f, indent=2)


def format_table(metrics: Mapping[str, Mapping[str, Any]]) -> str:
    """The console table: one line per scored ranking, mAP and mP@k in percent."""
    lines = [f"{'protocol':<18}{'mAP':>8}" + "".join(f"{'mP@' + str(k):>9}" for k in KAPPAS)]
    for name in sorted(metrics):
        entry = metrics[name]
        lines.append(
            f"{name:<18}{100 * entry['mAP']:8.2f}"
            + "".join(f"{100 * v:9.2f}" for v in entry["mP@k"])
        )
    return "\n".join(lines)
