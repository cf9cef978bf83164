"""Re-ranking speed, ours against the official approach (cKDTree + skimage RANSAC), same data.

`make_reranking_problem` builds one query and its shortlist of candidates with local features of
known geometry: a candidate showing the query's landmark shares a fraction of its descriptors,
whose index locations map to the query locations by a known affine (+ sub-pixel noise), plus
"repetitive-structure" matches (same descriptor, unrelated location) that RANSAC must reject;
other candidates only share a few such spurious matches. Descriptors are 128-D unit vectors like
DELG's: a shared descriptor is within L2 0.3 of its twin, unrelated ones are ~1.41 apart, so the
putative matches (threshold 1.0) are exactly the planted ones ("clean data").

`benchmark_reranking` times the full re-ranking of the shortlist with `reranking.rerank` and with
`reference.reference_rerank`, and compares the inlier count of every candidate.
"""

from __future__ import annotations

import dataclasses
import time
from statistics import median

import numpy as np

from delg_tf.benchmark.reference import reference_count_inliers, reference_rerank
from delg_tf.retrieval.reranking import (
    DEFAULT_CONFIG,
    VerificationConfig,
    count_inliers,
    make_inlier_counter,
    rerank,
)


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@dataclasses.dataclass
class RerankingProblem:
    """One query and its shortlist.

    Attributes:
      query: {"descriptors": [M, 128] float32, "locations": [M, 2] float32 (y, x)}.
      candidates: one such dict per shortlisted index image, in global-ranking order.
      true_inliers: [C] planted geometrically consistent matches per candidate (0 for negatives).
      spurious: [C] planted matches with unrelated locations per candidate.
    """

    query: dict[str, np.ndarray]
    candidates: list[dict[str, np.ndarray]]
    true_inliers: np.ndarray
    spurious: np.ndarray


def _random_affine(rng: np.random.Generator, image_shape: tuple[int, int]) -> np.ndarray:
    """[2, 3] affine (y, x) -> (y, x): rotation +-20 deg, scale 0.7-1.3, mild shear, shift."""
    angle = np.deg2rad(rng.uniform(-20, 20))
    scale = rng.uniform(0.7, 1.3)
    shear = rng.uniform(-0.1, 0.1)
    linear = (
        scale
        * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        @ np.array([[1.0, shear], [0.0, 1.0]])
    )
    centre = np.array(image_shape, np.float64) / 2
    shift = centre - linear @ centre + rng.uniform(-60, 60, 2)
    return np.concatenate([linear, shift[:, None]], axis=1)


def make_reranking_problem(
    num_candidates: int = 100,
    num_features: int = 1000,
    dim: int = 128,
    positive_every: int = 5,
    shared_fraction: tuple[float, float] = (0.1, 0.5),
    spurious_positive: float = 0.5,
    spurious_negative: int = 12,
    image_shape: tuple[int, int] = (768, 1024),
    seed: int = 0,
) -> RerankingProblem:
    """Builds a query and `num_candidates` candidates with planted matches (see module doc).

    Args:
      num_candidates: shortlist size (100, the official num_to_rerank).
      num_features: local features per image (DELG keeps up to 1000).
      dim: descriptor size (128 with the autoencoder).
      positive_every: every n-th candidate (starting with the first) shows the landmark.
      shared_fraction: range of the fraction of features a positive shares geometrically.
      spurious_positive: spurious matches of a positive, as a fraction of its true ones.
      spurious_negative: spurious matches of every negative.
      image_shape: (H, W) over which locations are spread.
      seed: seed.
    """
    rng = np.random.default_rng(seed)
    h, w = image_shape

    def locations(n):
        return rng.uniform([0, 0], [h, w], (n, 2))

    query_desc = _unit(rng.standard_normal((num_features, dim)))
    query_loc = locations(num_features)
    candidates, true_inliers, spurious = [], [], []
    for c in range(num_candidates):
        desc = _unit(rng.standard_normal((num_features, dim)))
        loc = locations(num_features)
        positive = c % positive_every == 0
        n_true = int(rng.uniform(*shared_fraction) * num_features) if positive else 0
        n_spur = int(spurious_positive * n_true) if positive else spurious_negative
        picked = rng.choice(num_features, n_true + n_spur, replace=False)  # query rows
        slots = rng.choice(num_features, n_true + n_spur, replace=False)  # candidate rows
        noise = rng.standard_normal((n_true + n_spur, dim))
        noise *= 0.3 / np.linalg.norm(noise, axis=1, keepdims=True)
        desc[slots] = _unit(query_desc[picked] + noise)
        if n_true:
            # Candidate (index) locations whose affine image is the query location, +-0.5 px.
            affine = _random_affine(rng, image_shape)
            linear, shift = affine[:, :2], affine[:, 2]
            target = query_loc[picked[:n_true]] + rng.normal(0, 0.5, (n_true, 2))
            loc[slots[:n_true]] = (target - shift) @ np.linalg.inv(linear).T
        candidates.append(
            {"descriptors": desc.astype(np.float32), "locations": loc.astype(np.float32)}
        )
        true_inliers.append(n_true)
        spurious.append(n_spur)
    query = {
        "descriptors": query_desc.astype(np.float32),
        "locations": query_loc.astype(np.float32),
    }
    return RerankingProblem(query, candidates, np.array(true_inliers), np.array(spurious))


@dataclasses.dataclass
class RerankingBenchmark:
    """Timed re-ranking of one shortlist, ours and the official approach.

    Attributes:
      ours_seconds: wall time of each run of `rerank` over the shortlist.
      reference_seconds: wall time of each run of `reference_rerank`.
      ours_inliers: [C] inlier counts per candidate (ours).
      reference_inliers: [C] inlier counts per candidate (official approach).
      true_inliers: [C] planted geometrically consistent matches.
      same_order: whether both produced the same re-ranked order.
    """

    ours_seconds: list[float]
    reference_seconds: list[float]
    ours_inliers: np.ndarray
    reference_inliers: np.ndarray
    true_inliers: np.ndarray
    same_order: bool

    @property
    def ours_ms_per_query(self) -> float:
        return 1e3 * median(self.ours_seconds)

    @property
    def reference_ms_per_query(self) -> float:
        return 1e3 * median(self.reference_seconds)

    @property
    def speedup(self) -> float:
        return median(self.reference_seconds) / median(self.ours_seconds)

    @property
    def inlier_agreement(self) -> float:
        """Fraction of candidates where both approaches count the same inliers."""
        return float(np.mean(self.ours_inliers == self.reference_inliers))


def benchmark_reranking(
    problem: RerankingProblem,
    runs: int = 3,
    reference_runs: int = 1,
    config: VerificationConfig = DEFAULT_CONFIG,
) -> RerankingBenchmark:
    """Times re-ranking of `problem`'s shortlist by ours and by the official approach.

    Each run re-ranks the whole shortlist from scratch (no memoised counts across runs), with
    the global ranking = shortlist order and global scores decreasing along it.

    Args:
      problem: from `make_reranking_problem`.
      runs: timed runs of ours (one untimed warm-up first).
      reference_runs: timed runs of the official approach (slow: seconds per run).
      config: matching and RANSAC settings (official defaults).
    """
    n = len(problem.candidates)
    ranks = np.arange(n)
    scores = np.linspace(1.0, 0.5, n)

    def ours():
        counter = make_inlier_counter(problem.query, problem.candidates.__getitem__, config)
        return rerank(ranks, scores, counter, num_to_rerank=n)

    def reference():
        return reference_rerank(
            ranks, scores, problem.query, problem.candidates.__getitem__, num_to_rerank=n,
            config=config,
        )  # fmt: skip

    ours_ranks, _ = ours()  # warm-up (numpy/BLAS first-call costs)
    ours_seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        ours()
        ours_seconds.append(time.perf_counter() - start)
    reference_seconds = []
    for _ in range(reference_runs):
        start = time.perf_counter()
        reference_ranks = reference()
        reference_seconds.append(time.perf_counter() - start)
    ours_inliers = np.array([count_inliers(problem.query, c, config) for c in problem.candidates])
    reference_inliers = np.array(
        [reference_count_inliers(problem.query, c, config) for c in problem.candidates]
    )
    return RerankingBenchmark(
        ours_seconds=ours_seconds,
        reference_seconds=reference_seconds,
        ours_inliers=ours_inliers,
        reference_inliers=reference_inliers,
        true_inliers=problem.true_inliers,
        same_order=list(ours_ranks) == list(reference_ranks),
    )
