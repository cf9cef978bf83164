"""The re-ranking figures: ours against the official approach on the same shortlist."""

from __future__ import annotations

from delg_tf.benchmark.report import Report, figure
from delg_tf.benchmark.settings import Settings


def run_reranking(s: Settings, report: Report) -> None:
    """ms/query of both re-rankers, the speedup, and how far their inlier counts agree."""
    from delg_tf.benchmark.reranking_benchmark import benchmark_reranking, make_reranking_problem

    problem = make_reranking_problem(s.num_candidates, s.num_local_features)
    result = benchmark_reranking(problem, runs=s.repeats, reference_runs=s.reference_repeats)
    size = f"{s.num_candidates} candidates x {s.num_local_features} features, 128-D"
    report.add(
        figure("reranking.ours_ms_per_query", [1e3 * t for t in result.ours_seconds], "ms/query",
               f"ours: matmul matching + vectorised RANSAC; {size}")
    )  # fmt: skip
    report.add(
        figure("reranking.official_ms_per_query", [1e3 * t for t in result.reference_seconds],
               "ms/query", f"official approach: cKDTree + skimage.measure.ransac; {size}")
    )  # fmt: skip
    reference = sorted(result.reference_seconds)[len(result.reference_seconds) // 2]
    report.add(
        figure("reranking.speedup", [reference / t for t in result.ours_seconds], "x",
               "official median time / ours per run", ">=", 20)
    )  # fmt: skip
    positives = result.true_inliers > 0
    diff = abs(result.ours_inliers - result.reference_inliers)
    relative = diff[positives] / result.reference_inliers[positives].clip(min=1)
    report.add(
        figure("reranking.inlier_agreement", [result.inlier_agreement], "fraction",
               "candidates whose inlier counts are identical (ours vs official); "
               f"max |diff| {int(diff.max())}; true-match candidates "
               f"{int(positives.sum())}", ">=", 0.9)
    )  # fmt: skip
    report.add(
        figure("reranking.inlier_max_relative_difference",
               [float(relative.max()) if relative.size else 0.0], "fraction",
               "over candidates that show the landmark: max |ours - official| / official",
               "<=", 0.01)
    )  # fmt: skip
    report.add(
        figure("reranking.same_order", [float(result.same_order)], "bool",
               "re-ranked order identical to the official one", ">=", 1)
    )  # fmt: skip
