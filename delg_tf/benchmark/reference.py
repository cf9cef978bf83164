"""The official re-ranking approach (scipy cKDTree + skimage RANSAC), kept as a baseline.

Same logic as `detect_to_retrieve/image_reranking.py` (with `n_jobs` renamed `workers`, removed in
SciPy 1.9, and skimage's `random_state` renamed `rng`). The benchmark and the tests compare the
fast path in `reranking.py` against these functions.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping

import numpy as np
from scipy import spatial
from skimage import measure, transform

from delg_tf.retrieval.reranking import (
    DEFAULT_CONFIG,
    MIN_RANSAC_SAMPLES,
    NUM_TO_RERANK,
    VerificationConfig,
)


def reference_count_inliers(
    query: Mapping[str, np.ndarray],
    index: Mapping[str, np.ndarray],
    config: VerificationConfig = DEFAULT_CONFIG,
) -> int:
    """Inliers between two images as the official `MatchFeatures` computes them."""
    index_desc = np.asarray(index["descriptors"])
    query_desc = np.asarray(query["descriptors"])
    if index_desc.shape[0] == 0 or query_desc.shape[0] == 0:
        return 0
    tree = spatial.cKDTree(index_desc)
    num_index = index_desc.shape[0]
    if config.use_ratio_test:
        distances, indices = tree.query(query_desc, k=2, workers=-1)
        keep = distances[:, 0] < config.descriptor_matching_threshold * distances[:, 1]
        indices = indices[:, 0]
    else:
        _, indices = tree.query(
            query_desc, distance_upper_bound=config.descriptor_matching_threshold, workers=-1
        )
        keep = indices != num_index
    query_locations = np.asarray(query["locations"])[keep]
    index_locations = np.asarray(index["locations"])[indices[keep]]
    if query_locations.shape[0] <= MIN_RANSAC_SAMPLES:
        return 0
    _, inliers = measure.ransac(
        (index_locations, query_locations),
        transform.AffineTransform,
        min_samples=MIN_RANSAC_SAMPLES,
        residual_threshold=config.ransac_residual_threshold,
        max_trials=config.ransac_max_trials,
        rng=config.ransac_seed,
    )
    return 0 if inliers is None else int(np.sum(inliers))


def reference_rerank(
    ranks: np.ndarray,
    global_scores: np.ndarray,
    query: Mapping[str, np.ndarray],
    index_features: Callable[[int], Mapping[str, np.ndarray]],
    junk: Collection[int] = (),
    num_to_rerank: int = NUM_TO_RERANK,
    config: VerificationConfig = DEFAULT_CONFIG,
) -> list[int]:
    """Official `RerankByGeometricVerification`: returns the new ranks as a list of index ids."""
    num_index = len(global_scores)
    num_to_rerank = min(num_to_rerank, num_index)
    junk = set(int(j) for j in junk)
    inliers_and_scores = [[0, float(global_scores[i])] for i in range(num_index)]
    num_verified = 0
    for index_id in ranks:
        if num_verified >= num_to_rerank:
            break
        if int(index_id) in junk:
            continue
        inliers_and_scores[index_id][0] = reference_count_inliers(
            query, index_features(int(index_id)), config
        )
        num_verified += 1
    return sorted(
        range(num_index),
        key=lambda i: (inliers_and_scores[i][0], inliers_and_scores[i][1]),
        reverse=True,
    )
