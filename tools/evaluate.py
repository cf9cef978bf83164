"""delg-evaluate: Revisited Oxford/Paris retrieval from feature stores, as `perform_retrieval.py`.

Ranks the index by global-descriptor similarity, optionally re-ranks each protocol's top images by
local matching + RANSAC, and writes `metrics.txt` (official format: medium, hard and, with
--use_geometric_verification, medium_after_gv and hard_after_gv), `metrics.json` and
`flags.txt` to --output_dir.

  delg-evaluate --dataset_file_path=gnd_roxford5k.pkl --query_features_dir=feats/query \
    --index_features_dir=feats/index --output_dir=results --use_geometric_verification
"""

from __future__ import annotations

import json
import os
import time

import numpy as np
from absl import app, flags, logging
from tqdm import tqdm

from delg_tf.common.flags_record import serialize_flags, write_flags_record
from delg_tf.data.revisited_ground_truth import load_ground_truth
from delg_tf.evaluation import revisited
from delg_tf.extraction.feature_store import FeatureStore
from delg_tf.retrieval import store_retrieval
from delg_tf.retrieval.reranking import VerificationConfig

FLAGS = flags.FLAGS

flags.DEFINE_string("dataset_file_path", None, "Ground truth: gnd_*.pkl, .mat or .json.")
flags.DEFINE_string("query_features_dir", None, "Feature store of the (cropped) queries.")
flags.DEFINE_string("index_features_dir", None, "Feature store of the index images.")
flags.DEFINE_string("output_dir", None, "Where metrics.txt / metrics.json are written.")
flags.DEFINE_boolean("use_geometric_verification", False, "Re-rank by local matching + RANSAC.")
flags.DEFINE_float(
    "local_descriptor_matching_threshold",
    1.0,
    "L2 distance bound of a putative match (the ratio, with --use_ratio_test).",
)
flags.DEFINE_float("ransac_residual_threshold", 20.0, "RANSAC inlier residual bound, pixels.")
flags.DEFINE_boolean("use_ratio_test", False, "Ratio test instead of a distance bound.")
flags.DEFINE_integer("num_to_rerank", 100, "Non-junk images verified per query.", lower_bound=1)
_REQUIRED = ("dataset_file_path", "query_features_dir", "index_features_dir", "output_dir")
_FLAG_NAMES = _REQUIRED + (
    "use_geometric_verification",
    "local_descriptor_matching_threshold",
    "ransac_residual_threshold",
    "use_ratio_test",
    "num_to_rerank",
)

PROTOCOLS = ("medium", "hard")
KAPPAS = revisited.DEFAULT_KAPPAS


def _json_metrics(metrics: dict) -> dict:
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


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    start = time.perf_counter()
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    write_flags_record(FLAGS.output_dir, serialize_flags(FLAGS, _FLAG_NAMES))

    gt = load_ground_truth(FLAGS.dataset_file_path)
    query_store = FeatureStore(FLAGS.query_features_dir)
    index_store = FeatureStore(FLAGS.index_features_dir)
    for store in (query_store, index_store):
        if not store.complete:
            logging.warning("%s: extraction did not finish (manifest not complete)", store.path)
    similarities, ranks = store_retrieval.global_ranking(
        query_store, index_store, gt["qimlist"], gt["imlist"]
    )
    metrics_all = revisited.compute_metrics(ranks, gt["gnd"], KAPPAS)
    metrics = {p: metrics_all[p] for p in PROTOCOLS}

    if FLAGS.use_geometric_verification:
        config = VerificationConfig(
            descriptor_matching_threshold=FLAGS.local_descriptor_matching_threshold,
            use_ratio_test=FLAGS.use_ratio_test,
            ransac_residual_threshold=FLAGS.ransac_residual_threshold,
        )
        junk = {
            p: [revisited.protocol_ground_truth(entry, p)[1] for entry in gt["gnd"]]
            for p in PROTOCOLS
        }
        with tqdm(total=len(gt["qimlist"]), desc="re-ranking queries", unit="query") as bar:
            reranked = store_retrieval.rerank_queries(
                ranks,
                similarities,
                store_retrieval.local_features_by_position(query_store, gt["qimlist"], "query"),
                store_retrieval.local_features_by_position(index_store, gt["imlist"], "index"),
                junk,
                config,
                FLAGS.num_to_rerank,
                progress=bar.update,
            )
        for p in PROTOCOLS:
            metrics[f"{p}_after_gv"] = revisited.compute_metrics(reranked[p], gt["gnd"], KAPPAS)[p]

    revisited.save_metrics_file(os.path.join(FLAGS.output_dir, "metrics.txt"), metrics, KAPPAS)
    with open(os.path.join(FLAGS.output_dir, "metrics.json"), "w") as f:
        json.dump({"kappas": list(KAPPAS), "metrics": _json_metrics(metrics)}, f, indent=2)
    print(f"{'protocol':<18}{'mAP':>8}" + "".join(f"{'mP@' + str(k):>9}" for k in KAPPAS))
    for name in sorted(metrics):
        entry = metrics[name]
        print(
            f"{name:<18}{100 * entry['mAP']:8.2f}"
            + "".join(f"{100 * v:9.2f}" for v in entry["mP@k"])
        )
    logging.info("Wrote %s in %.1f s", FLAGS.output_dir, time.perf_counter() - start)


def run() -> None:
    # Required here, not at import: tests import several binaries into one process, and an
    # import-time requirement would make every other binary's flag parsing fail.
    flags.mark_flags_as_required(_REQUIRED)
    app.run(main)


if __name__ == "__main__":
    run()
