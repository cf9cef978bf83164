"""The demo's metrics: untrained, trained (global search) and re-ranked rows, mAP in percent."""

from __future__ import annotations

import json
import math

from delg_tf.evaluation.revisited import REPORTED_PROTOCOLS


def _percent(value) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return 100.0 * float(value)


def demo_metrics(untrained_json: str, trained_json: str) -> dict:
    """The demo's metrics from two delg-evaluate metrics.json files, in percent.

    Returns:
      {"untrained", "trained_global", "trained_reranked"}, each
      {"medium": {"mAP": float, "mP@k": {"1": float, ...}}, "hard": {...}}.

    Raises:
      ValueError: naming the file, if a protocol or value is missing.
    """
    rows = {
        "untrained": (untrained_json, ""),
        "trained_global": (trained_json, ""),
        "trained_reranked": (trained_json, "_after_gv"),
    }
    out = {}
    for row, (path, suffix) in rows.items():
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        kappas = data.get("kappas", [])
        out[row] = {}
        for protocol in REPORTED_PROTOCOLS:
            entry = data.get("metrics", {}).get(protocol + suffix)
            if entry is None or len(entry.get("mP@k", [])) != len(kappas):
                raise ValueError(f"{path}: no complete '{protocol + suffix}' metrics")
            out[row][protocol] = {
                "mAP": _percent(entry["mAP"]),
                "mP@k": {str(k): _percent(v) for k, v in zip(kappas, entry["mP@k"], strict=True)},
            }
    return out


def learning_checks(metrics: dict) -> list[str]:
    """Sentences saying whether training and re-ranking helped (the demo's acceptance bar)."""
    untrained = metrics["untrained"]["medium"]["mAP"]
    trained = metrics["trained_global"]["medium"]["mAP"]
    reranked = metrics["trained_reranked"]["medium"]["mAP"]
    notes = []
    if None in (untrained, trained, reranked):
        return ["Some medium mAP is undefined (no query has positives)."]
    ratio = trained / untrained if untrained > 0 else math.inf
    notes.append(
        f"Training: medium mAP {untrained:.2f} -> {trained:.2f} ({ratio:.2f}x the untrained "
        f"network; target >= 2x: {'met' if ratio >= 2 else 'NOT met'})."
    )
    notes.append(
        f"Re-ranking: medium mAP {trained:.2f} -> {reranked:.2f} "
        f"({reranked - trained:+.2f} points; {'raised' if reranked > trained else 'NOT raised'})."
    )
    return notes
