"""delg-evaluate end to end on a hand-built ground truth and tiny feature stores."""

import json
import subprocess
import sys

import numpy as np
import pytest

from delg_tf.data.revisited_ground_truth import save_ground_truth_json
from delg_tf.extraction.feature_store import FeatureStoreWriter

# Global similarity of each index image to query q0 (q1 is orthogonal to all: ties -> id order).
SIMS = [0.9, 0.85, 0.8, 0.1, 0.7, 0.75, 0.5, 0.45, 0.4, 0.35, 0.3, 0.2]
GND = [
    {"easy": [3], "hard": [5], "junk": [1], "bbx": [0.0, 0.0, 100.0, 100.0]},
    {"easy": [7], "hard": [], "junk": [], "bbx": [0.0, 0.0, 50.0, 50.0]},
]


def _unit(rng, n, d=128):
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _local(descriptors, locations):
    n = len(descriptors)
    return {
        "descriptors": descriptors,
        "locations": locations,
        "scales": np.ones(n, np.float32),
        "attention": np.ones(n, np.float32),
    }


def _write_dataset(root):
    rng = np.random.default_rng(0)
    q_desc, q_loc = _unit(rng, 30), rng.uniform(0, 400, (30, 2)).astype(np.float32)
    index = {}
    for i, s in enumerate(SIMS):
        desc, loc = _unit(rng, 30), rng.uniform(0, 400, (30, 2)).astype(np.float32)
        if i == 3:  # 20 affine-consistent matches with q0 (globally ranked last)
            desc[:20], loc[:20] = q_desc[:20], 0.5 * q_loc[:20] + 7.0
        if i == 5:  # 10 matches
            desc[:10], loc[:10] = q_desc[20:30], q_loc[20:30] @ [[0.9, 0.1], [-0.1, 0.9]]
        index[f"im{i}"] = (np.array([s, np.sqrt(1 - s * s), 0, 0], np.float32), _local(desc, loc))
    with FeatureStoreWriter(str(root / "index"), 4, 128, shard_size=5) as w:
        for name in sorted(index, reverse=True):  # store order differs from imlist order
            w.add(name, *index[name])
    with FeatureStoreWriter(str(root / "query"), 4, 128) as w:
        w.add("q1", np.array([0, 0, 0, 1], np.float32), _local(_unit(rng, 30), q_loc))
        w.add("q0", np.array([1, 0, 0, 0], np.float32), _local(q_desc, q_loc))
        w.add("unused", np.array([1, 0, 0, 0], np.float32), _local(q_desc, q_loc))
    gt = {"imlist": list(index)[:12], "qimlist": ["q0", "q1"], "gnd": GND}
    save_ground_truth_json(str(root / "gnd.json"), gt)
    return gt


def _run(root, *extra):
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "delg_tools.evaluate",
            f"--dataset_file_path={root / 'gnd.json'}",
            f"--query_features_dir={root / 'query'}",
            f"--index_features_dir={root / 'index'}",
            f"--output_dir={root / 'out'}",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_end_to_end_with_geometric_verification(tmp_path):
    _write_dataset(tmp_path)
    result = _run(tmp_path, "--use_geometric_verification")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())["metrics"]
    # Global medium: q0 positives at junk-free ranks 2 and 10, q1's at 7 (trapezoid AP).
    ap_q0 = (1 / 3) / 2 / 2 + (1 / 10 + 2 / 11) / 2 / 2
    ap_q1 = (1 / 8) / 2
    assert metrics["medium"]["mAP"] == pytest.approx((ap_q0 + ap_q1) / 2)
    assert metrics["hard"]["mAP"] == pytest.approx((1 / 3) / 2)  # q1 has no hard positives
    assert metrics["hard"]["aps"][1] is None
    # After GV: im3 (20 inliers) and im5 (10) lead for q0; for hard im3 is junk, im5 leads.
    assert metrics["medium_after_gv"]["mAP"] == pytest.approx((1 + ap_q1) / 2)
    assert metrics["hard_after_gv"]["mAP"] == pytest.approx(1.0)
    text = (tmp_path / "out" / "metrics.txt").read_text().splitlines()
    assert text[0::4] == ["hard", "hard_after_gv", "medium", "medium_after_gv"]
    assert text[5] == "  mAP=100.0"
    assert text[6].startswith("  mP@k[ 1  5 10] [100.")
    recorded = (tmp_path / "out" / "flags.txt").read_text().splitlines()
    assert "--num_to_rerank=100" in recorded and "--use_geometric_verification" in recorded
    assert "medium_after_gv" in result.stdout


def test_global_only_and_missing_id(tmp_path):
    gt = _write_dataset(tmp_path)
    result = _run(tmp_path)
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())["metrics"]
    assert sorted(metrics) == ["hard", "medium"]
    gt["imlist"][4] = "not_extracted"
    save_ground_truth_json(str(tmp_path / "gnd.json"), gt)
    result = _run(tmp_path)
    assert result.returncode != 0
    assert "'not_extracted'" in result.stderr and "index" in result.stderr


def test_training_free_stages_then_ransac_name_their_configuration(tmp_path):
    _write_dataset(tmp_path)
    stages = (
        "--database_augmentation=dba",
        "--dba_k=2",
        "--query_expansion=aqe",
        "--aqe_k=1",
        "--superglobal_rerank",
        "--superglobal_m=5",
    )
    result = _run(tmp_path, "--use_geometric_verification", *stages)
    assert result.returncode == 0, result.stderr
    written = json.loads((tmp_path / "out" / "metrics.json").read_text())
    configuration = written["configuration"]
    assert configuration["name"] == "global+dba+aqe+superglobal+ransac"
    assert configuration["database_augmentation"] == {"k": 2, "alpha": 3.0, "search": "exact"}
    assert configuration["superglobal"] == {"m": 5, "k": 9, "beta": 0.15}
    assert set(written["timings"]["ms_per_query"]) == {"search", "aqe", "superglobal", "ransac"}
    assert (tmp_path / "out" / "index_dba.npy").exists()  # the default DBA cache
    # q1 is orthogonal to every index image: alpha-QE adds nothing (weights 0), DBA keeps every
    # similarity 0, SuperGlobal reorders only the top 5, and its positive im7 is 8th: the global
    # AP. im3 and im5 still win q0's verification.
    ap_q1 = (1 / 8) / 2
    assert written["metrics"]["medium"]["aps"][1] == pytest.approx(ap_q1)
    assert written["metrics"]["hard_after_gv"]["mAP"] == pytest.approx(1.0)
    flags = (tmp_path / "out" / "flags.txt").read_text().splitlines()
    assert "--query_expansion=aqe" in flags and "--superglobal_m=5" in flags
    bad = _run(tmp_path, "--query_expansion=dqe")
    assert bad.returncode != 0 and "query_expansion" in bad.stderr
