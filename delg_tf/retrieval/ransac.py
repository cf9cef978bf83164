"""Vectorised RANSAC for 2-D affine transforms, with `skimage.measure.ransac` semantics.

What is the same as `skimage.measure.ransac(data, AffineTransform, min_samples=3, ...)` (what the
official re-ranking calls):
  - a hypothesis is the affine map through 3 distinct random correspondences (src -> dst);
  - residual = Euclidean distance |A(src) - dst|; inlier iff residual < residual_threshold;
  - the best hypothesis has the most inliers, ties broken by the smaller sum of squared residuals
    over all points, the earliest trial winning exact ties;
  - adaptive termination after trial t when t >= ceil(log(1 - p) / log(1 - w^3)), w being the best
    inlier fraction so far (both clipped to [eps, 1 - eps] as skimage does); default p = 1, the
    skimage default the official code runs with (skimage then still stops early, e.g. after 270
    trials at w = 0.5);
  - the reported inliers are those of the best hypothesis; the returned model is re-fitted on them.
What differs: hypotheses are drawn and scored in batches (one array operation per batch), so the
random stream differs from skimage's; collinear (degenerate) samples are counted as trials but
skipped; the re-fit uses ordinary least squares instead of skimage's total least squares.
"""

from __future__ import annotations

import dataclasses

import numpy as np

_EPS = np.spacing(1)


@dataclasses.dataclass
class RansacResult:
    """Outcome of `ransac_affine`.

    Attributes:
      model: [3, 3] homogeneous affine matrix mapping src (row, col) to dst, or None.
      inliers: [N] bool mask of the best hypothesis' inliers (all False if none).
      num_inliers: inlier count (what the official re-ranking scores an image by).
      num_trials: hypotheses drawn before stopping.
    """

    model: np.ndarray | None
    inliers: np.ndarray
    num_inliers: int
    num_trials: int


def dynamic_max_trials(
    num_inliers: np.ndarray, num_points: int, min_samples: int, probability: float
) -> np.ndarray:
    """skimage's adaptive trial count, elementwise over `num_inliers` (inf where it is 0)."""
    num_inliers = np.asarray(num_inliers, np.float64)
    if probability == 0:
        return np.zeros_like(num_inliers)
    nom = np.clip(1.0 - probability, _EPS, 1 - _EPS)
    denom = np.clip(1.0 - (num_inliers / num_points) ** min_samples, _EPS, 1 - _EPS)
    trials = np.ceil(np.log(nom) / np.log(denom))
    return np.where(num_inliers == 0, np.inf, trials)


def _sample_triplets(rng: np.random.Generator, n: int, count: int) -> np.ndarray:
    """[count, 3] rows of 3 distinct indices in [0, n), uniformly distributed."""
    a = rng.integers(0, n, count)
    b = rng.integers(0, n - 1, count)
    c = rng.integers(0, n - 2, count)
    b += b >= a
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    c += c >= lo
    c += c >= hi
    return np.stack([a, b, c], axis=1)


def _solve_affines(src: np.ndarray, dst: np.ndarray, triplets: np.ndarray, scale: float):
    """Affines through each triplet, in closed form (Cramer's rule on the 3x3 systems).

    Returns:
      params [B, 2, 3] (dst = params @ [y, x, 1]) and a [B] mask of non-degenerate samples.
    """
    p = src[triplets]  # [B, 3, 2]
    q = dst[triplets]
    u = p[:, 1] - p[:, 0]
    v = p[:, 2] - p[:, 0]
    det = u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0]
    # Collinear samples: twice the triangle area is tiny relative to the point spread.
    valid = np.abs(det) > 1e-9 * scale * scale
    det = np.where(valid, det, 1.0)
    du = q[:, 1] - q[:, 0]
    dv = q[:, 2] - q[:, 0]
    # Linear part L solves L [u v] = [du dv]: L = [du dv] [u v]^-1.
    inv = np.stack([np.stack([v[:, 1], -v[:, 0]], 1), np.stack([-u[:, 1], u[:, 0]], 1)], 1)
    inv /= det[:, None, None]  # [B, 2, 2], rows of [u v]^-1
    duv = np.stack([du, dv], axis=2)  # [B, 2 (coord), 2 (u|v)]
    linear = duv @ inv  # [B, 2, 2]
    shift = q[:, 0] - np.einsum("bij,bj->bi", linear, p[:, 0])
    return np.concatenate([linear, shift[:, :, None]], axis=2), valid


def _fit_least_squares(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    design = np.concatenate([src, np.ones((src.shape[0], 1))], axis=1)
    solution, *_ = np.linalg.lstsq(design, dst, rcond=None)  # [3, 2]
    model = np.eye(3)
    model[:2] = solution.T
    return model


def ransac_affine(
    src: np.ndarray,
    dst: np.ndarray,
    residual_threshold: float = 20.0,
    max_trials: int = 1000,
    stop_probability: float = 1.0,
    seed: int | np.random.Generator | None = 0,
    min_samples: int = 3,
    batch_size: int | None = None,
) -> RansacResult:
    """Robustly fits dst ~ A(src) with an affine A.

    Args:
      src: [N, 2] source points (the official code passes index-image (y, x) locations).
      dst: [N, 2] destination points (query-image locations).
      residual_threshold: inlier iff |A(src) - dst| < this (pixels).
      max_trials: hypotheses at most.
      stop_probability: confidence of the adaptive stop (skimage's `stop_probability`).
      seed: int seed or Generator.
      min_samples: must be 3 (the minimal affine sample), kept for signature parity.
      batch_size: hypotheses scored per array operation (None: about 65536 // N).

    Returns:
      A `RansacResult`.
    """
    if min_samples != 3:
        raise ValueError(f"ransac_affine needs min_samples=3, got {min_samples}")
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    n = src.shape[0]
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2:
        raise ValueError(f"src {src.shape} and dst {dst.shape} must both be [N, 2]")
    if n < 3:
        raise ValueError(f"ransac_affine needs at least 3 correspondences, got {n}")
    rng = np.random.default_rng(seed)
    scale = float(np.ptp(src, axis=0).max()) if n else 0.0
    scale = max(scale, 1.0)
    thr2 = residual_threshold**2

    sy, sx, dy, dx = src[:, 0], src[:, 1], dst[:, 0], dst[:, 1]
    if batch_size is None:  # about 64k residuals per batch: few numpy calls, little waste
        batch_size = int(np.clip(65536 // n, 32, 1024))
    best_count, best_ssr, best_params = 0, np.inf, None
    trials = 0
    limit = float(max_trials)
    while trials < limit:
        count = int(min(batch_size, np.ceil(limit - trials)))
        params, valid = _solve_affines(src, dst, _sample_triplets(rng, n, count), scale)
        # Residuals of every hypothesis on every point in one go: [B, N].
        a = params[:, :, :, None]  # [B, 2, 3, 1]
        ry = a[:, 0, 0] * sy + a[:, 0, 1] * sx + (a[:, 0, 2] - dy)
        rx = a[:, 1, 0] * sy + a[:, 1, 1] * sx + (a[:, 1, 2] - dx)
        res2 = ry * ry + rx * rx
        counts = np.where(valid, np.count_nonzero(res2 < thr2, axis=1), -1)
        ssr = np.where(valid, res2.sum(axis=1), np.inf)
        # Replay skimage's sequential rule: stop after trial t once t >= dynamic bound.
        running = np.maximum(np.maximum.accumulate(counts), best_count)
        bounds = np.minimum(dynamic_max_trials(running, n, 3, stop_probability), limit)
        done = (trials + np.arange(1, count + 1)) >= bounds
        used = int(np.argmax(done)) + 1 if done.any() else count
        c, s = counts[:used], ssr[:used]
        top = c.max()
        if top >= 0:
            cand = np.flatnonzero(c == top)
            pick = cand[np.argmin(s[cand])]  # argmin keeps the earliest of equal sums
            if top > best_count or (top == best_count and s[pick] < best_ssr):
                best_count, best_ssr, best_params = int(top), float(s[pick]), params[pick]
        trials += used
        limit = float(bounds[used - 1])
        if done.any():
            break

    if best_params is None or best_count == 0:
        return RansacResult(None, np.zeros(n, bool), 0, trials)
    pred = src @ best_params[:, :2].T + best_params[:, 2]
    inliers = np.sum((pred - dst) ** 2, axis=1) < thr2
    model = _fit_least_squares(src[inliers], dst[inliers])
    return RansacResult(model, inliers, int(inliers.sum()), trials)
