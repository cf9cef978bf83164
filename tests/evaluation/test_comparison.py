"""The training-free comparison rows on the hand-computed DBA example of test_run.py."""

import numpy as np
import pytest

from delg_tf.evaluation import comparison
from delg_tf.evaluation.run import EvaluationConfig
from delg_tf.extraction.feature_store import FeatureStore, FeatureStoreWriter
from delg_tf.retrieval.database_augmentation import DatabaseAugmentationConfig
from delg_tf.retrieval.reranking import VerificationConfig

# As tests/evaluation/test_run.py: the query (0.8, 0.6) ranks b, a globally and a, b after DBA
# (k = 1, alpha = 1); a is the only (hard) positive; fillers pad the index for mP@10.
INDEX = {"a": [1.0, 0.0], "b": [0.6, 0.8], "c": [0.0, 1.0], "d": [-0.6, 0.8]}
_ANGLES = np.radians(np.arange(200, 251, 10))
INDEX.update({f"f{i}": [np.cos(t), np.sin(t)] for i, t in enumerate(_ANGLES)})
GT = {
    "qimlist": ["q"],
    "imlist": list(INDEX),
    "gnd": [{"easy": [], "hard": [0], "junk": [], "bbx": [0.0, 0.0, 10.0, 10.0]}],
}


def _local(rng):
    d = rng.normal(size=(8, 16)).astype(np.float32)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    ones = np.ones(8, np.float32)
    locations = rng.uniform(0, 100, (8, 2)).astype(np.float32)
    return {"descriptors": d, "locations": locations, "scales": ones, "attention": ones}


@pytest.fixture
def stores(tmp_path):
    rng = np.random.default_rng(0)
    with FeatureStoreWriter(str(tmp_path / "index"), 2, 16) as w:
        for name, value in INDEX.items():
            w.add(name, np.array(value, np.float32), _local(rng))
    with FeatureStoreWriter(str(tmp_path / "query"), 2, 16) as w:
        w.add("q", np.array([0.8, 0.6], np.float32), _local(rng))
    return FeatureStore(str(tmp_path / "query")), FeatureStore(str(tmp_path / "index"))


def test_rows_alone_and_with_ransac(stores):
    configurations = {
        "global": EvaluationConfig(),
        "+dba": EvaluationConfig(database_augmentation=DatabaseAugmentationConfig(k=1, alpha=1)),
    }
    rows = comparison.compare_training_free(GT, *stores, configurations, VerificationConfig())
    assert [r["name"] for r in rows] == ["global", "global+ransac", "+dba", "+dba+ransac"]
    hard = [r["metrics"]["hard"]["mAP"] for r in rows]
    # a second globally (AP 0.25), first after DBA (1.0); no pair verifies, so RANSAC keeps both.
    assert hard == pytest.approx([0.25, 0.25, 1.0, 1.0])
    assert rows[3]["configuration"]["name"] == "global+dba+ransac"
    assert rows[0]["dba_seconds"] is None and rows[2]["dba_seconds"] > 0
    # The "+ransac" rows add the same RANSAC cost, measured on the global ranking.
    ransac = rows[1]["ms_per_query"] - rows[0]["ms_per_query"]
    assert rows[3]["ms_per_query"] - rows[2]["ms_per_query"] == pytest.approx(ransac)
    table = comparison.markdown_table(rows, "t").splitlines()
    assert table[0] == "**t**" and len(table) == 2 + 2 + 4
    # mP@10 is precision at min(10, rank of the last positive) = 1 here.
    assert table[6].startswith("| +dba | 100.00 | 100.00 | 100.00 | 100.00 |")


def test_default_configurations_are_the_issue_rows():
    configs = comparison.default_configurations()
    assert list(configs) == ["global", "+aqe", "+dba", "+dba+aqe", "+superglobal"]
    assert configs["+dba+aqe"].describe()["name"] == "global+dba+aqe"
    assert configs["+superglobal"].superglobal.m == 400
