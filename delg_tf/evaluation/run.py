"""The evaluation pipeline: feature stores + ground truth -> ranks, re-ranked ranks, metrics.

What `delg-evaluate` runs and what the match figure needs for its one query, in one place. The
stages, in this order (each optional but the first):

1. global search: index ranked by descriptor inner product (as the official
   `perform_retrieval.py`);
2. training-free refinements of that ranking, on the stored global descriptors: database-side
   augmentation (alpha-DBA: the index descriptors replaced once, before any query is searched),
   then alpha query expansion (each query re-searched with its expanded descriptor), then
   SuperGlobal re-ranking of each query's top M;
3. geometric verification (local matching + RANSAC) of each protocol's top `num_to_rerank`
   non-junk images of the ranking stage 2 produced; ties in inliers keep that ranking's order.

Then Revisited metrics for the medium and hard protocols of the first-stage ranking (stages 1-2)
and, with verification, after it; and the outputs (`metrics.txt` in the official format,
`metrics.json` with the configuration it scored and the cost of each stage).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from delg_tf.evaluation import revisited
from delg_tf.extraction.feature_store import FeatureStore
from delg_tf.retrieval import store_retrieval
from delg_tf.retrieval.database_augmentation import (
    DatabaseAugmentationConfig,
    augment_database,
    load_or_augment,
)
from delg_tf.retrieval.exact_search import similarity_matrix
from delg_tf.retrieval.match_statistics import MatchStatistics
from delg_tf.retrieval.query_expansion import QueryExpansionConfig, expand_queries
from delg_tf.retrieval.reranking import (
    NUM_TO_RERANK,
    VerificationConfig,
    make_inlier_counter,
    rerank,
)
from delg_tf.retrieval.superglobal import SuperGlobalConfig, superglobal_rerank

_LOG = logging.getLogger(__name__)

PROTOCOLS = ("medium", "hard")
KAPPAS = revisited.DEFAULT_KAPPAS


@dataclasses.dataclass(frozen=True)
class EvaluationConfig:
    """What to score beyond the global ranking.

    Attributes:
      verification: local matching + RANSAC settings; None: no geometric verification.
      num_to_rerank: non-junk images verified per query and protocol.
      database_augmentation: alpha-DBA settings, or None.
      query_expansion: alpha-QE settings, or None.
      superglobal: SuperGlobal re-ranking settings, or None.
      dba_cache_path: .npy file holding the DBA descriptors (reused while they match the index
        and settings); None computes them in memory for this run only.
    """

    verification: VerificationConfig | None = None
    num_to_rerank: int = NUM_TO_RERANK
    database_augmentation: DatabaseAugmentationConfig | None = None
    query_expansion: QueryExpansionConfig | None = None
    superglobal: SuperGlobalConfig | None = None
    dba_cache_path: str | None = None

    def describe(self) -> dict[str, Any]:
        """The configuration scored, stage by stage in pipeline order, for metrics.json."""

        def settings(value):
            return None if value is None else dataclasses.asdict(value)

        stages = ["global"]
        for name, value in (
            ("dba", self.database_augmentation),
            ("aqe", self.query_expansion),
            ("superglobal", self.superglobal),
            ("ransac", self.verification),
        ):
            if value is not None:
                stages.append(name)
        return {
            "name": "+".join(stages),
            "order": ["global", "dba", "aqe", "superglobal", "ransac"],
            "database_augmentation": settings(self.database_augmentation),
            "query_expansion": settings(self.query_expansion),
            "superglobal": settings(self.superglobal),
            "geometric_verification": None
            if self.verification is None
            else {**dataclasses.asdict(self.verification), "num_to_rerank": self.num_to_rerank},
        }


@dataclasses.dataclass
class EvaluationResult:
    """Rankings and metrics of one evaluation.

    Attributes:
      similarities: [Q, N] float32 global similarity per index position.
      ranks: [Q, N] int64 global ranking (positions in the ground truth's `imlist`, best first).
      reranked: {protocol: [Q, N] ranks after geometric verification}, empty without it.
      metrics: {"medium", "hard"[, "medium_after_gv", "hard_after_gv"]: revisited metrics}.
      first_stage_ranks: [Q, N] ranking after the training-free stages (`ranks` without them).
      timings: seconds per stage ("dba" once; "search", "aqe", "superglobal", "ransac" in total
        over all queries).
      matching: putative-match and inlier counts of geometric verification (None without it).
    """

    similarities: np.ndarray
    ranks: np.ndarray
    reranked: dict[str, np.ndarray]
    metrics: dict[str, dict[str, Any]]
    first_stage_ranks: np.ndarray | None = None
    timings: dict[str, float] = dataclasses.field(default_factory=dict)
    matching: MatchStatistics | None = None


def open_stores(query_dir: str, index_dir: str) -> tuple[FeatureStore, FeatureStore]:
    """Opens the query and index feature stores, warning about unfinished extractions."""
    query_store, index_store = FeatureStore(query_dir), FeatureStore(index_dir)
    for store in (query_store, index_store):
        if store.missing_parts:
            missing = store.missing_parts
            _LOG.warning(
                "%s: %d of %d parts are not finished (%s): their images are missing",
                store.path,
                len(missing),
                len(store.manifest["parts"]),
                " ".join(missing[:5]) + (" ..." * (len(missing) > 5)),
            )
        elif not store.complete:
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
    timings: dict[str, float] = {}
    query_names, index_names = ground_truth["qimlist"], ground_truth["imlist"]
    clock = time.perf_counter()
    similarities, ranks = store_retrieval.global_ranking(
        query_store, index_store, query_names, index_names
    )
    timings["search"] = time.perf_counter() - clock
    first_stage = first_stage_ranking(
        ground_truth, query_store, index_store, similarities, ranks, config, timings
    )
    metrics_all = revisited.compute_metrics(first_stage, ground_truth["gnd"], KAPPAS)
    metrics = {p: metrics_all[p] for p in PROTOCOLS}
    reranked: dict[str, np.ndarray] = {}
    matching = None
    if config.verification is not None:
        matching = MatchStatistics()
        # RANSAC re-ranks the list stage 2 produced: without stage 2 the global similarities
        # order equal inlier counts (the official code); with it, the refined ranking does.
        scores = similarities if first_stage is ranks else order_scores(first_stage)
        by_position = store_retrieval.local_features_by_position
        clock = time.perf_counter()
        reranked = store_retrieval.rerank_queries(
            first_stage,
            scores,
            by_position(query_store, query_names, "query"),
            by_position(index_store, index_names, "index"),
            protocol_junk(ground_truth["gnd"]),
            config.verification,
            config.num_to_rerank,
            progress=progress,
            statistics=matching,
        )
        timings["ransac"] = time.perf_counter() - clock
        for p in PROTOCOLS:
            metrics[f"{p}_after_gv"] = revisited.compute_metrics(
                reranked[p], ground_truth["gnd"], KAPPAS
            )[p]
    return EvaluationResult(similarities, ranks, reranked, metrics, first_stage, timings, matching)


def order_scores(ranks: np.ndarray) -> np.ndarray:
    """Scores [Q, N] float64 that sort to `ranks`: minus each index position's rank."""
    scores = np.empty(ranks.shape, np.float64)
    np.put_along_axis(scores, ranks, -np.arange(ranks.shape[1], dtype=np.float64)[None], axis=1)
    return scores


def first_stage_ranking(
    ground_truth: Mapping[str, Any],
    query_store: FeatureStore,
    index_store: FeatureStore,
    similarities: np.ndarray,
    ranks: np.ndarray,
    config: EvaluationConfig,
    timings: dict[str, float] | None = None,
) -> np.ndarray:
    """The global ranking after the configured training-free stages (DBA, alpha-QE, SuperGlobal).

    Args:
      ground_truth: revisitop dict (`qimlist`, `imlist`).
      query_store, index_store: the feature stores.
      similarities, ranks: [Q, N] global search results in `imlist` order.
      config: the stages to run.
      timings: filled with the seconds each stage took.

    Returns:
      [Q, N] int64 ranks (index positions in `imlist`): `ranks` itself when no stage is on.
    """
    timings = {} if timings is None else timings
    if (
        config.database_augmentation is None
        and config.query_expansion is None
        and config.superglobal is None
    ):
        return ranks
    query_names, index_names = ground_truth["qimlist"], ground_truth["imlist"]
    queries = query_store.global_descriptors()[
        store_retrieval.store_rows(query_store, query_names, "query")
    ].astype(np.float32)
    index_rows = store_retrieval.store_rows(index_store, index_names, "index image")
    index = index_store.global_descriptors()
    if not np.array_equal(index_rows, np.arange(len(index_store))):
        index = index[index_rows]  # imlist order (a copy; the store's order otherwise)
    if config.database_augmentation is not None:
        clock = time.perf_counter()
        if config.dba_cache_path is None:
            index = augment_database(index, config.database_augmentation)
        else:
            index, computed = load_or_augment(
                index, list(index_names), config.database_augmentation, config.dba_cache_path
            )
            if not computed:
                _LOG.info("DBA descriptors reused from %s", config.dba_cache_path)
        timings["dba"] = time.perf_counter() - clock
        clock = time.perf_counter()
        similarities = similarity_matrix(queries, index)
        ranks = np.argsort(-similarities, axis=1, kind="stable")
        timings["search"] = timings.get("search", 0.0) + time.perf_counter() - clock
    if config.query_expansion is not None:
        clock = time.perf_counter()
        queries = expand_queries(queries, index, ranks, config.query_expansion)
        similarities = similarity_matrix(queries, index)
        ranks = np.argsort(-similarities, axis=1, kind="stable")
        timings["aqe"] = time.perf_counter() - clock
    if config.superglobal is not None:
        clock = time.perf_counter()
        ranks = superglobal_rerank(queries, index, ranks, config.superglobal)
        timings["superglobal"] = time.perf_counter() - clock
    return ranks


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


def write_outputs(
    output_dir: str,
    metrics: Mapping[str, Mapping[str, Any]],
    configuration: Mapping[str, Any] | None = None,
    timings: Mapping[str, float] | None = None,
    num_queries: int = 0,
    matching: Mapping[str, Any] | None = None,
) -> None:
    """Writes `metrics.txt` (official format) and `metrics.json` to `output_dir`.

    Args:
      output_dir: existing folder.
      metrics: {name: revisited metrics}.
      configuration: `EvaluationConfig.describe()`, the configuration scored.
      timings: seconds per stage (`EvaluationResult.timings`); written with per-query ms.
      num_queries: queries evaluated (for the per-query figures).
      matching: `MatchStatistics.to_json()` of geometric verification, if it ran.
    """
    import json

    revisited.save_metrics_file(os.path.join(output_dir, "metrics.txt"), metrics, KAPPAS)
    out: dict[str, Any] = {"kappas": list(KAPPAS), "metrics": json_metrics(metrics)}
    if configuration is not None:
        out["configuration"] = dict(configuration)
    if timings:
        per_query = {
            name: 1000.0 * seconds / max(num_queries, 1)
            for name, seconds in timings.items()
            if name != "dba"
        }
        out["timings"] = {
            "seconds": dict(timings),
            "ms_per_query": per_query,
            "dba_seconds_once": timings.get("dba"),
        }
    if matching is not None:
        out["matching"] = dict(matching)
    with open(os.path.join(output_dir, "metrics.json"), "w") as f:
        json.dump(out, f, indent=2)


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
