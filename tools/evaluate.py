"""delg-evaluate: Revisited Oxford/Paris retrieval from feature stores, as `perform_retrieval.py`.

Ranks the index by global-descriptor similarity, optionally refines that ranking without training
(--database_augmentation=dba, then --query_expansion=aqe, then --superglobal_rerank), optionally
re-ranks each protocol's top images by local matching + RANSAC, and writes `metrics.txt`
(official format: medium, hard and, with --use_geometric_verification, medium_after_gv and
hard_after_gv), `metrics.json` (with the configuration scored and the cost of each stage) and
`flags.txt` to --output_dir.

  delg-evaluate --dataset_file_path=gnd_roxford5k.pkl --query_features_dir=feats/query \
    --index_features_dir=feats/index --output_dir=results --use_geometric_verification
"""

from __future__ import annotations

import os
import time

from absl import flags, logging
from tqdm import tqdm

from delg_tf.common.flags_record import serialize_flags, write_flags_record
from delg_tf.data.revisited_ground_truth import load_ground_truth
from delg_tf.evaluation import run as evaluation_run
from delg_tf.retrieval import superglobal as sg
from delg_tf.retrieval.database_augmentation import SEARCH_KINDS, DatabaseAugmentationConfig
from delg_tf.retrieval.match_statistics import saturation_warning
from delg_tf.retrieval.neighbour_weights import DEFAULT_ALPHA, DEFAULT_K
from delg_tf.retrieval.query_expansion import QueryExpansionConfig
from delg_tf.retrieval.reranking import VerificationConfig
from delg_tools import cli

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
# Training-free stages on the stored global descriptors, run in this order after the global
# search and before geometric verification: DBA, alpha-QE, SuperGlobal re-ranking.
flags.DEFINE_enum("database_augmentation", "none", ["none", "dba"], "Database-side augmentation.")
flags.DEFINE_integer("dba_k", DEFAULT_K, "DBA: neighbours per index image.", lower_bound=0)
flags.DEFINE_float("dba_alpha", DEFAULT_ALPHA, "DBA: similarity weight exponent.", lower_bound=0)
flags.DEFINE_enum("dba_search", "exact", list(SEARCH_KINDS), "DBA neighbour search (faiss kinds).")
flags.DEFINE_string(
    "dba_cache_path", None, "DBA descriptors (.npy) to reuse or write; default: in --output_dir."
)
flags.DEFINE_enum("query_expansion", "none", ["none", "aqe"], "Query expansion.")
flags.DEFINE_integer("aqe_k", DEFAULT_K, "alpha-QE: top results added to the query.", lower_bound=0)
flags.DEFINE_float("aqe_alpha", DEFAULT_ALPHA, "alpha-QE: weight exponent.", lower_bound=0)
flags.DEFINE_boolean("superglobal_rerank", False, "SuperGlobal re-ranking of the top M.")
flags.DEFINE_integer("superglobal_m", sg.DEFAULT_M, "SuperGlobal: candidates M.", lower_bound=1)
flags.DEFINE_integer("superglobal_k", sg.DEFAULT_K, "SuperGlobal: neighbours K.", lower_bound=0)
flags.DEFINE_float("superglobal_beta", sg.DEFAULT_BETA, "SuperGlobal: beta.", lower_bound=0)
_REQUIRED = ("dataset_file_path", "query_features_dir", "index_features_dir", "output_dir")
_FLAG_NAMES = _REQUIRED + (
    "use_geometric_verification",
    "local_descriptor_matching_threshold",
    "ransac_residual_threshold",
    "use_ratio_test",
    "num_to_rerank",
    "database_augmentation",
    "dba_k",
    "dba_alpha",
    "dba_search",
    "dba_cache_path",
    "query_expansion",
    "aqe_k",
    "aqe_alpha",
    "superglobal_rerank",
    "superglobal_m",
    "superglobal_k",
    "superglobal_beta",
)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise cli.UsageError(f"unexpected arguments: {argv[1:]}")
    start = time.perf_counter()
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    write_flags_record(FLAGS.output_dir, serialize_flags(FLAGS, _FLAG_NAMES))

    gt = load_ground_truth(FLAGS.dataset_file_path)
    query_store, index_store = evaluation_run.open_stores(
        FLAGS.query_features_dir, FLAGS.index_features_dir
    )
    verification = None
    if FLAGS.use_geometric_verification:
        verification = VerificationConfig(
            descriptor_matching_threshold=FLAGS.local_descriptor_matching_threshold,
            use_ratio_test=FLAGS.use_ratio_test,
            ransac_residual_threshold=FLAGS.ransac_residual_threshold,
        )
    dba = None
    if FLAGS.database_augmentation == "dba":
        dba = DatabaseAugmentationConfig(FLAGS.dba_k, FLAGS.dba_alpha, FLAGS.dba_search)
    config = evaluation_run.EvaluationConfig(
        verification,
        FLAGS.num_to_rerank,
        database_augmentation=dba,
        query_expansion=QueryExpansionConfig(FLAGS.aqe_k, FLAGS.aqe_alpha)
        if FLAGS.query_expansion == "aqe"
        else None,
        superglobal=sg.SuperGlobalConfig(
            FLAGS.superglobal_m, FLAGS.superglobal_k, FLAGS.superglobal_beta
        )
        if FLAGS.superglobal_rerank
        else None,
        dba_cache_path=None
        if dba is None
        else FLAGS.dba_cache_path or os.path.join(FLAGS.output_dir, "index_dba.npy"),
    )
    total = len(gt["qimlist"]) if verification is not None else 0
    with tqdm(total=total, desc="re-ranking queries", unit="query", disable=not total) as bar:
        result = evaluation_run.evaluate(gt, query_store, index_store, config, bar.update)
    if result.matching is not None:
        warning = saturation_warning(
            result.matching, verification.descriptor_matching_threshold, verification.use_ratio_test
        )
        if warning:
            logging.warning("%s", warning)
    evaluation_run.write_outputs(
        FLAGS.output_dir,
        result.metrics,
        config.describe(),
        result.timings,
        len(gt["qimlist"]),
        matching=None if result.matching is None else result.matching.to_json(),
    )
    print(evaluation_run.format_table(result.metrics))
    logging.info("Wrote %s in %.1f s", FLAGS.output_dir, time.perf_counter() - start)


def run() -> None:
    cli.require_positive(
        "local_descriptor_matching_threshold", "ransac_residual_threshold", "num_to_rerank"
    )
    cli.require_non_negative("dba_alpha", "aqe_alpha", "superglobal_beta")  # NaN, inf
    # A query missing from a store (KeyError), a bad gnd file or too small an index (ValueError)
    # are the user's inputs: one line each.
    cli.run(
        main, tool="delg-evaluate", module=__name__, required=_REQUIRED,
        user_errors=(KeyError, ValueError),
    )  # fmt: skip


if __name__ == "__main__":
    run()
