"""Putative-match and inlier counts of geometric verification, and a warning when they saturate.

On real photos with a small model, the default matching threshold (1.0, the official value for
the 128-d descriptors of a trained R50) let 60-100% of a query's features "match" every image,
and RANSAC then found tens of inliers on positives and negatives alike: re-ranking cut mAP from
57 to 11 (issue 12). When the median query's putative matches exceed `SATURATION` of its
features, the matching threshold no longer separates anything; `saturation_warning` says so,
naming the flags that change it, and `to_json` goes to `metrics.json`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

SATURATION = 0.5  # putative matches / query features above which matching tells nothing


@dataclasses.dataclass
class MatchStatistics:
    """Per verified (query, index image) pair: the query's feature count, putative matches,
    inliers. Filled by `store_retrieval.rerank_queries(..., statistics=...)`."""

    query_features: list[int] = dataclasses.field(default_factory=list)
    putative: list[int] = dataclasses.field(default_factory=list)
    inliers: list[int] = dataclasses.field(default_factory=list)
    query_of_pair: list[int] = dataclasses.field(default_factory=list)

    def record(self, query: int, num_query_features: int, putative: int, inliers: int) -> None:
        self.query_of_pair.append(int(query))
        self.query_features.append(int(num_query_features))
        self.putative.append(int(putative))
        self.inliers.append(int(inliers))

    def putative_fraction_per_query(self) -> dict[int, float]:
        """Median over a query's verified images of putative matches / query features."""
        per_query: dict[int, list[float]] = {}
        for q, n, p in zip(self.query_of_pair, self.query_features, self.putative, strict=True):
            per_query.setdefault(q, []).append(p / n if n else 0.0)
        return {q: float(np.median(v)) for q, v in per_query.items()}

    def saturated(self) -> bool:
        """Whether the median query's putative matches exceed `SATURATION` of its features."""
        fractions = list(self.putative_fraction_per_query().values())
        return bool(fractions) and float(np.median(fractions)) > SATURATION

    def to_json(self) -> dict:
        """Counts per query and their distribution (min, 25%, median, 75%, max)."""

        def spread(values) -> dict[str, float]:
            if not len(values):
                return {}
            points = np.percentile(np.asarray(values, np.float64), [0, 25, 50, 75, 100])
            names = ("min", "p25", "median", "p75", "max")
            return dict(zip(names, map(float, points), strict=True))

        per_query: dict[int, dict[str, list[int]]] = {}
        for q, p, i in zip(self.query_of_pair, self.putative, self.inliers, strict=True):
            entry = per_query.setdefault(q, {"putative": [], "inliers": []})
            entry["putative"].append(p)
            entry["inliers"].append(i)
        fractions = self.putative_fraction_per_query()
        return {
            "verified_pairs": len(self.putative),
            "putative": spread(self.putative),
            "inliers": spread(self.inliers),
            "putative_fraction_of_query_features": spread(list(fractions.values())),
            "saturated": self.saturated(),
            "per_query": {str(q): v for q, v in sorted(per_query.items())},
        }


def saturation_warning(statistics: MatchStatistics, threshold: float, ratio: bool) -> str | None:
    """One warning naming the flags, if putative matches saturate; else None."""
    if not statistics.saturated():
        return None
    fractions = list(statistics.putative_fraction_per_query().values())
    median = 100 * float(np.median(fractions))
    return (
        f"putative matches saturate: the median query matched {median:.0f}% of its local "
        f"features on the images it verified, so geometric verification cannot tell positives "
        f"from negatives. Lower --local_descriptor_matching_threshold (now {threshold:g}"
        + (", a ratio" if ratio else ", an L2 distance")
        + ")"
        + ("" if ratio else " or use --use_ratio_test")
        + "; see matching in metrics.json."
    )
