"""Geometric-verification re-ranking, as the official `RerankByGeometricVerification`.

Per query and per protocol: walk the global ranking, skip the protocol's junk images, verify the
first `num_to_rerank` (100) others by local matching + affine RANSAC, then sort ALL index images
by (inliers, global similarity) descending. Any verified image with >= 1 inlier therefore outranks
every unverified one, and the others keep their global order. An image with <= 3 putative matches
scores 0 inliers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Mapping

import numpy as np

from delg_tf.retrieval.descriptor_matching import match_descriptors
from delg_tf.retrieval.ransac import ransac_affine

NUM_TO_RERANK = 100
MIN_RANSAC_SAMPLES = 3
NUM_RANSAC_TRIALS = 1000

LocalFeatures = Mapping[str, np.ndarray]


@dataclasses.dataclass(frozen=True)
class VerificationConfig:
    """Matching and RANSAC settings (defaults: the official DELG re-ranking).

    Attributes:
      descriptor_matching_threshold: L2 distance bound of a putative match; with
        `use_ratio_test` it is the ratio instead (as the official flag).
      use_ratio_test: k=2 ratio test d1 < threshold * d2, without a distance bound.
      mutual: additionally require mutual nearest neighbours (not in the official code).
      ransac_residual_threshold: inlier residual bound in pixels.
      ransac_max_trials: RANSAC hypotheses at most.
      ransac_stop_probability: skimage's stop_probability (the official code runs its default 1).
      ransac_seed: seed of every RANSAC run (the official code reseeds each pair with 0).
    """

    descriptor_matching_threshold: float = 1.0
    use_ratio_test: bool = False
    mutual: bool = False
    ransac_residual_threshold: float = 20.0
    ransac_max_trials: int = NUM_RANSAC_TRIALS
    ransac_stop_probability: float = 1.0
    ransac_seed: int = 0


DEFAULT_CONFIG = VerificationConfig()


def putative_matches(
    query: LocalFeatures, index: LocalFeatures, config: VerificationConfig
) -> np.ndarray:
    """[K, 2] (query row, index row) putative matches under `config`."""
    if config.use_ratio_test:
        return match_descriptors(
            query["descriptors"],
            index["descriptors"],
            distance_threshold=None,
            ratio=config.descriptor_matching_threshold,
            mutual=config.mutual,
        )
    return match_descriptors(
        query["descriptors"],
        index["descriptors"],
        distance_threshold=config.descriptor_matching_threshold,
        mutual=config.mutual,
    )


def count_inliers(
    query: LocalFeatures, index: LocalFeatures, config: VerificationConfig = DEFAULT_CONFIG
) -> int:
    """Inliers of the affine RANSAC between two images' local features (0 if <= 3 matches).

    Args:
      query, index: dicts with descriptors [N, d] and locations [N, 2] (y, x).
      config: matching and RANSAC settings.
    """
    return verify_pair(query, index, config)[1]


def verify_pair(
    query: LocalFeatures, index: LocalFeatures, config: VerificationConfig = DEFAULT_CONFIG
) -> tuple[int, int]:
    """(putative matches, RANSAC inliers) between two images' local features."""
    matches = putative_matches(query, index, config)
    if matches.shape[0] <= MIN_RANSAC_SAMPLES:
        return int(matches.shape[0]), 0
    result = ransac_affine(
        np.asarray(index["locations"])[matches[:, 1]],
        np.asarray(query["locations"])[matches[:, 0]],
        residual_threshold=config.ransac_residual_threshold,
        max_trials=config.ransac_max_trials,
        stop_probability=config.ransac_stop_probability,
        seed=config.ransac_seed,
    )
    return int(matches.shape[0]), result.num_inliers


def make_inlier_counter(
    query: LocalFeatures,
    index_features: Callable[[int], LocalFeatures],
    config: VerificationConfig = DEFAULT_CONFIG,
    on_pair: Callable[[int, int, int], None] | None = None,
) -> Callable[[int], int]:
    """A memoised `index_id -> inliers` for one query (protocols share most candidates).

    `on_pair(index_id, putative, inliers)` is called once per verified image (statistics).
    """
    cache: dict[int, int] = {}

    def inliers(index_id: int) -> int:
        if index_id not in cache:
            putative, cache[index_id] = verify_pair(query, index_features(index_id), config)
            if on_pair is not None:
                on_pair(index_id, putative, cache[index_id])
        return cache[index_id]

    return inliers


def rerank(
    ranks: np.ndarray,
    global_scores: np.ndarray,
    num_inliers: Callable[[int], int],
    junk: Collection[int] = (),
    num_to_rerank: int = NUM_TO_RERANK,
) -> tuple[np.ndarray, np.ndarray]:
    """Re-ranks one query's results by geometric verification.

    Args:
      ranks: [N] index ids, best first (the global ranking).
      global_scores: [N] global similarity of each index id (indexed by id, not by rank).
      num_inliers: index id -> inlier count (e.g. from `make_inlier_counter`).
      junk: index ids not to verify (the protocol's junk).
      num_to_rerank: non-junk images verified from the top of `ranks`.

    Returns:
      new ranks [N] (all index ids, sorted by (inliers, global score) descending, ties by id
      ascending as the official stable sort) and inliers [N] per index id.
    """
    ranks = np.asarray(ranks, np.int64)
    scores = np.asarray(global_scores, np.float64)
    n = scores.shape[0]
    if ranks.shape != (n,):
        raise ValueError(f"ranks has shape {ranks.shape}, expected ({n},) like global_scores")
    junk_mask = np.zeros(n, bool)
    junk_ids = np.fromiter(junk, np.int64) if len(junk) else np.zeros(0, np.int64)
    junk_mask[junk_ids] = True
    candidates = ranks[~junk_mask[ranks]][: min(num_to_rerank, n)]
    inliers = np.zeros(n, np.int64)
    for index_id in candidates:
        inliers[index_id] = num_inliers(int(index_id))
    new_ranks = np.lexsort((np.arange(n), -scores, -inliers))
    return new_ranks, inliers
