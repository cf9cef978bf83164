"""The evaluation pipeline's stage order on feature stores with hand-computed rankings."""

import itertools
import json

import numpy as np
import pytest

from delg_tf.evaluation import run
from delg_tf.extraction.feature_store import FeatureStore, FeatureStoreWriter
from delg_tf.retrieval.database_augmentation import DatabaseAugmentationConfig, augment_database
from delg_tf.retrieval.query_expansion import QueryExpansionConfig, expand_queries
from delg_tf.retrieval.reranking import VerificationConfig
from delg_tf.retrieval.superglobal import SuperGlobalConfig, superglobal_rerank

# The alpha-DBA worked example of tests/retrieval/test_database_augmentation.py: the query
# (0.8, 0.6) ranks b, a, c, d globally and a, b, c, d after DBA (k = 1, alpha = 1).
# Six fillers at 200..250 degrees (negative to the query, a, b and c; below 0.3 to d) make the
# index long enough for mP@10 without changing anyone's nearest neighbour among a..d.
INDEX = {"a": [1.0, 0.0], "b": [0.6, 0.8], "c": [0.0, 1.0], "d": [-0.6, 0.8]}
_ANGLES = np.radians(np.arange(200, 251, 10))
INDEX.update({f"f{i}": [np.cos(t), np.sin(t)] for i, t in enumerate(_ANGLES)})
GT = {
    "qimlist": ["q"],
    "imlist": list(INDEX),
    "gnd": [{"easy": [], "hard": [0], "junk": [], "bbx": [0.0, 0.0, 10.0, 10.0]}],
}
DBA = DatabaseAugmentationConfig(k=1, alpha=1.0)


def _local(rng):
    # Random unit descriptors: no pair is within L2 distance 1, so RANSAC finds no inliers.
    d = rng.normal(size=(8, 16)).astype(np.float32)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    n = len(d)
    locations = rng.uniform(0, 100, (n, 2)).astype(np.float32)
    ones = np.ones(n, np.float32)
    return {"descriptors": d, "locations": locations, "scales": ones, "attention": ones}


@pytest.fixture
def stores(tmp_path):
    rng = np.random.default_rng(0)
    with FeatureStoreWriter(str(tmp_path / "index"), 2, 16) as w:
        for name in reversed(INDEX):  # store order differs from imlist order
            w.add(name, np.array(INDEX[name], np.float32), _local(rng))
    with FeatureStoreWriter(str(tmp_path / "query"), 2, 16) as w:
        w.add("q", np.array([0.8, 0.6], np.float32), _local(rng))
    return FeatureStore(str(tmp_path / "query")), FeatureStore(str(tmp_path / "index"))


def test_global_only_is_the_global_ranking(stores):
    result = run.evaluate(GT, *stores)
    assert result.ranks[0, :4].tolist() == [1, 0, 2, 3]
    assert result.first_stage_ranks is result.ranks
    # a, the only (hard) positive, at rank 2: trapezoid AP (0 / 1 + 1 / 2) / 2.
    assert result.metrics["hard"]["mAP"] == pytest.approx(0.25)
    assert sorted(result.metrics) == ["hard", "medium"]


def test_dba_changes_the_first_stage_and_its_metrics(stores, tmp_path):
    config = run.EvaluationConfig(
        database_augmentation=DBA, dba_cache_path=str(tmp_path / "out" / "dba.npy")
    )
    result = run.evaluate(GT, *stores, config)
    assert result.first_stage_ranks[0, :4].tolist() == [0, 1, 2, 3]
    assert result.ranks[0, :4].tolist() == [1, 0, 2, 3]  # the global ranking is kept beside it
    # a now first: AP 1 on both protocols (a is the only positive of each).
    assert result.metrics["hard"]["mAP"] == pytest.approx(1.0)
    assert result.metrics["medium"]["mAP"] == pytest.approx(1.0)
    assert (tmp_path / "out" / "dba.npy").exists() and "dba" in result.timings


def test_empty_stages_keep_the_ranking(stores):
    config = run.EvaluationConfig(
        database_augmentation=DatabaseAugmentationConfig(k=0),
        query_expansion=QueryExpansionConfig(k=0),
        superglobal=SuperGlobalConfig(m=1),
    )
    result = run.evaluate(GT, *stores, config)
    assert result.first_stage_ranks[0, :4].tolist() == [1, 0, 2, 3]


def test_ransac_without_inliers_keeps_the_refined_order(stores):
    # Nothing verifies, so the after-GV ranking is the DBA ranking (not the global one).
    config = run.EvaluationConfig(verification=VerificationConfig(), database_augmentation=DBA)
    result = run.evaluate(GT, *stores, config)
    for protocol in run.PROTOCOLS:
        np.testing.assert_array_equal(result.reranked[protocol], result.first_stage_ranks)
        assert result.reranked[protocol][0, :4].tolist() == [0, 1, 2, 3]
    assert result.metrics["hard_after_gv"]["mAP"] == pytest.approx(1.0)


def test_order_scores_sort_back_to_the_ranks():
    ranks = np.array([[2, 0, 3, 1], [0, 1, 2, 3]])
    scores = run.order_scores(ranks)
    np.testing.assert_array_equal(np.argsort(-scores, axis=1, kind="stable"), ranks)


def test_describe_names_the_configuration_in_pipeline_order(tmp_path):
    config = run.EvaluationConfig(
        verification=VerificationConfig(),
        database_augmentation=DBA,
        query_expansion=QueryExpansionConfig(),
        superglobal=SuperGlobalConfig(),
    )
    described = config.describe()
    assert described["name"] == "global+dba+aqe+superglobal+ransac"
    assert described["superglobal"] == {"m": 400, "k": 9, "beta": 0.15}
    assert described["geometric_verification"]["num_to_rerank"] == 100
    assert run.EvaluationConfig().describe()["name"] == "global"
    out = tmp_path / "o"
    out.mkdir()
    entry = {"mAP": 0.5, "mP@k": [1.0, 0.5, 0.25], "mR@k": [0.1, 0.2, 0.3], "aps": [0.5]}
    run.write_outputs(
        str(out),
        {"medium": entry, "hard": entry},
        described,
        {"dba": 2.0, "search": 0.5},
        num_queries=10,
    )
    written = json.loads((out / "metrics.json").read_text())
    assert written["configuration"]["name"] == "global+dba+aqe+superglobal+ransac"
    assert written["timings"]["ms_per_query"] == {"search": 50.0}
    assert written["timings"]["dba_seconds_once"] == 2.0


def test_stages_compose_in_the_documented_order(stores):
    # global -> DBA -> alpha-QE (against the augmented index) -> SuperGlobal (of the expanded
    # query over the augmented index). Every other order of the three, and SuperGlobal with the
    # unexpanded query, rank this query differently, so the check can fail.
    dba = DatabaseAugmentationConfig(k=1, alpha=1.0)
    aqe = QueryExpansionConfig(k=2, alpha=1.0)
    superglobal = SuperGlobalConfig(m=5, k=1, beta=1.0)
    config = run.EvaluationConfig(
        database_augmentation=dba, query_expansion=aqe, superglobal=superglobal
    )
    result = run.evaluate(GT, *stores, config)
    index = np.array([INDEX[name] for name in GT["imlist"]], np.float32)
    query = np.array([[0.8, 0.6]], np.float32)

    def ranked(q, x):
        return np.argsort(-(q @ x.T), axis=1, kind="stable")

    def composed(order, superglobal_query=None):
        q, x = query, index
        ranks = ranked(q, x)
        for stage in order:
            if stage == "dba":
                x = augment_database(x, dba)
                ranks = ranked(q, x)
            elif stage == "aqe":
                q = expand_queries(q, x, ranks, aqe)
                ranks = ranked(q, x)
            else:
                sg_query = q if superglobal_query is None else superglobal_query
                ranks = superglobal_rerank(sg_query, x, ranks, superglobal)
        return ranks[0].tolist()

    expected = composed(("dba", "aqe", "superglobal"))
    assert result.first_stage_ranks[0].tolist() == expected
    for order in itertools.permutations(("dba", "aqe", "superglobal")):
        if order != ("dba", "aqe", "superglobal"):
            assert composed(order) != expected, order
    assert composed(("dba", "aqe", "superglobal"), superglobal_query=query) != expected
