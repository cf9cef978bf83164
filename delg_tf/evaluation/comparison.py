"""The training-free comparison: each first-stage configuration scored alone and with RANSAC.

Rows (issue 16): global; +alpha-QE; +DBA; +DBA+alpha-QE; +SuperGlobal re-ranking; each also
followed by RANSAC re-ranking of its top `num_to_rerank`. Every configuration runs through
`run.first_stage_ranking`, the same code `delg-evaluate` runs. Inlier counts are deterministic per
(query, index image) pair (fixed RANSAC seed), so one memoised counter per query is shared by all
configurations: the RANSAC cost per query is therefore measured once, on the first configuration
(global), where nothing is cached yet, and reported for every "+ RANSAC" row.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

from delg_tf.evaluation import revisited
from delg_tf.evaluation.run import (
    KAPPAS,
    PROTOCOLS,
    EvaluationConfig,
    first_stage_ranking,
    order_scores,
    protocol_junk,
)
from delg_tf.extraction.feature_store import FeatureStore
from delg_tf.retrieval import store_retrieval
from delg_tf.retrieval.database_augmentation import DatabaseAugmentationConfig
from delg_tf.retrieval.query_expansion import QueryExpansionConfig
from delg_tf.retrieval.reranking import (
    DEFAULT_CONFIG,
    VerificationConfig,
    make_inlier_counter,
    rerank,
)
from delg_tf.retrieval.superglobal import SuperGlobalConfig


def default_configurations(dba_cache_dir: str | None = None) -> dict[str, EvaluationConfig]:
    """The issue's five first-stage configurations with every method's default settings."""
    dba = DatabaseAugmentationConfig()
    cache = None if dba_cache_dir is None else os.path.join(dba_cache_dir, "index_dba.npy")
    return {
        "global": EvaluationConfig(),
        "+aqe": EvaluationConfig(query_expansion=QueryExpansionConfig()),
        "+dba": EvaluationConfig(database_augmentation=dba, dba_cache_path=cache),
        "+dba+aqe": EvaluationConfig(
            database_augmentation=dba, query_expansion=QueryExpansionConfig(), dba_cache_path=cache
        ),
        "+superglobal": EvaluationConfig(superglobal=SuperGlobalConfig()),
    }


def _scores(ranks, gnd) -> dict[str, dict[str, float]]:
    metrics = revisited.compute_metrics(ranks, gnd, KAPPAS)
    return {
        p: {"mAP": float(metrics[p]["mAP"]), "mP@10": float(metrics[p]["mP@k"][KAPPAS.index(10)])}
        for p in PROTOCOLS
    }


def compare_training_free(
    ground_truth: Mapping[str, Any],
    query_store: FeatureStore,
    index_store: FeatureStore,
    configurations: Mapping[str, EvaluationConfig],
    verification: VerificationConfig | None = DEFAULT_CONFIG,
    num_to_rerank: int = 100,
) -> list[dict[str, Any]]:
    """Scores every configuration, alone and (with `verification`) followed by RANSAC.

    Args:
      ground_truth: revisitop dict (`qimlist`, `imlist`, `gnd`).
      query_store, index_store: feature stores.
      configurations: {row name: first-stage configuration (its `verification` is ignored)}.
      verification: RANSAC settings of the "+ ransac" rows; None: no such rows.
      num_to_rerank: non-junk images verified per query and protocol.

    Returns:
      One dict per row, in order: name, configuration (`describe()`), metrics {protocol: {mAP,
      mP@10}}, ms_per_query (first stage beyond the global search, or RANSAC), dba_seconds
      (one-off, None without DBA).
    """
    query_names, index_names = ground_truth["qimlist"], ground_truth["imlist"]
    gnd = ground_truth["gnd"]
    clock = time.perf_counter()
    similarities, ranks = store_retrieval.global_ranking(
        query_store, index_store, query_names, index_names
    )
    search_ms = 1e3 * (time.perf_counter() - clock) / len(query_names)
    counters = []
    if verification is not None:
        query_features = store_retrieval.local_features_by_position(query_store, query_names)
        index_features = store_retrieval.local_features_by_position(index_store, index_names)
        counters = [
            make_inlier_counter(query_features(q), index_features, verification)
            for q in range(len(query_names))
        ]
    junk = protocol_junk(gnd)
    rows: list[dict[str, Any]] = []
    ransac_ms = None
    for name, config in configurations.items():
        config = dataclasses.replace(config, verification=None)
        timings: dict[str, float] = {}
        first = first_stage_ranking(
            ground_truth, query_store, index_store, similarities, ranks, config, timings
        )
        stage_seconds = sum(v for k, v in timings.items() if k != "dba")
        rows.append(
            {
                "name": name,
                "configuration": config.describe(),
                "metrics": _scores(first, gnd),
                "ms_per_query": search_ms + 1e3 * stage_seconds / len(query_names),
                "dba_seconds": timings.get("dba"),
            }
        )
        if verification is None:
            continue
        scores = similarities if first is ranks else order_scores(first)
        clock = time.perf_counter()
        reranked = {p: first.copy() for p in PROTOCOLS}
        for q, counter in enumerate(counters):
            for p in PROTOCOLS:
                reranked[p][q], _ = rerank(first[q], scores[q], counter, junk[p][q], num_to_rerank)
        if ransac_ms is None:  # the first configuration: every count computed, none cached
            ransac_ms = 1e3 * (time.perf_counter() - clock) / len(query_names)
        metrics = {p: _scores(reranked[p], gnd)[p] for p in PROTOCOLS}
        rows.append(
            {
                "name": f"{name}+ransac",
                "configuration": dataclasses.replace(config, verification=verification).describe(),
                "metrics": metrics,
                "ms_per_query": rows[-1]["ms_per_query"] + ransac_ms,
                "dba_seconds": timings.get("dba"),
            }
        )
    return rows


def markdown_table(rows: Sequence[Mapping[str, Any]], title: str = "") -> str:
    """The comparison as a markdown table (mAP and mP@10 in percent)."""
    lines = [f"**{title}**", ""] if title else []
    lines += [
        "| configuration | medium mAP | hard mAP | medium mP@10 | hard mP@10 | ms/query | "
        "one-off DBA s |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        m = row["metrics"]
        dba = "" if row["dba_seconds"] is None else f"{row['dba_seconds']:.2f}"
        lines.append(
            f"| {row['name']} | {100 * m['medium']['mAP']:.2f} | {100 * m['hard']['mAP']:.2f} | "
            f"{100 * m['medium']['mP@10']:.2f} | {100 * m['hard']['mP@10']:.2f} | "
            f"{row['ms_per_query']:.2f} | {dba} |"
        )
    return "\n".join(lines) + "\n"
