"""Tests for the Revisited Oxford/Paris metrics and the metrics.txt format."""

import math

import numpy as np
import pytest

from delg_tf.evaluation import revisited

# ----------------------------------------------------------------------------------------------
# Anchors from the official research/delf/delf/python/datasets/revisited_op/dataset_test.py.


def test_average_precision_official_anchor():
    # i=0,r=0: (1+1)/2/3; i=1,r=2: (1/2+2/3)/2/3; i=2,r=5: (2/5+3/6)/2/3 -> 0.677778.
    assert revisited.average_precision(np.array([0, 2, 5])) == pytest.approx(0.677778, abs=1e-6)


def test_precision_recall_at_official_anchor():
    precisions, recalls = revisited.precision_recall_at(np.array([0, 2, 5]), [1, 5, 10])
    # P@10 is measured at the last positive (rank 6): 3/6.
    np.testing.assert_allclose(precisions, [1.0, 0.4, 0.5])
    np.testing.assert_allclose(recalls, [1 / 3, 2 / 3, 1.0])


def test_adjusted_positive_ranks_official_anchor():
    # Positives at positions [0, 2, 6, 10, 20], junk at [1, 8, 9, 30] -> [0, 1, 5, 7, 17].
    ranking = np.arange(100, 131)  # ids 100..130, id 100+p sits at position p.
    adjusted = revisited.adjusted_positive_ranks(
        ranking, positives=100 + np.array([20, 0, 6, 2, 10]), junk=100 + np.array([9, 1, 30, 8])
    )
    np.testing.assert_array_equal(adjusted, [0, 1, 5, 7, 17])


def test_protocol_ground_truth_official_parse_example():
    gnd = [
        {"easy": np.array([10, 56, 100]), "hard": np.array([0]), "junk": np.array([6, 90])},
        {"easy": np.array([], dtype="int64"), "hard": [5], "junk": [99, 100]},
        {"easy": [33], "hard": [66, 99], "junk": np.array([], dtype="int64")},
    ]
    expected = {
        "easy": [([10, 56, 100], [6, 90, 0]), ([], [99, 100, 5]), ([33], [66, 99])],
        "medium": [([10, 56, 100, 0], [6, 90]), ([5], [99, 100]), ([33, 66, 99], [])],
        "hard": [([0], [6, 90, 10, 56, 100]), ([5], [99, 100]), ([66, 99], [33])],
    }
    for protocol, per_query in expected.items():
        for entry, (positives, junk) in zip(gnd, per_query, strict=True):
            got_positives, got_junk = revisited.protocol_ground_truth(entry, protocol)
            np.testing.assert_array_equal(got_positives, positives)
            np.testing.assert_array_equal(got_junk, junk)


def test_compute_metrics_official_anchor():
    # The official ComputeMetrics case ('ok'/'junk' per query, PR ranks [1, 2, 5]) expressed as
    # gnd entries: ok -> easy with no hard images, so both easy and medium give the official case.
    ranks = np.array([[4, 2, 0, 1, 3], [0, 2, 4, 1, 3], [0, 1, 2, 3, 4]])
    gnd = [
        {"easy": [0, 1], "hard": [], "junk": [2]},
        {"easy": [0, 4], "hard": [], "junk": []},
        {"easy": [], "hard": [], "junk": []},
    ]
    results = revisited.compute_metrics(ranks, gnd, kappas=(1, 2, 5))
    nan = float("nan")
    for protocol in ("easy", "medium"):
        r = results[protocol]
        assert r["mAP"] == pytest.approx(0.604167, abs=1e-6)
        np.testing.assert_allclose(r["mP@k"], [0.5, 0.5, 0.666667], atol=1e-6)
        np.testing.assert_allclose(r["mR@k"], [0.25, 0.5, 1.0], atol=1e-6)
        np.testing.assert_allclose(r["aps"], [0.416667, 0.791667, nan], atol=1e-6)
        np.testing.assert_allclose(
            r["P@k"], [[0.0, 0.5, 0.666667], [1.0, 0.5, 0.666667], [nan] * 3], atol=1e-6
        )
        np.testing.assert_allclose(r["R@k"], [[0.0, 0.5, 1.0], [0.5, 0.5, 1.0], [nan] * 3])
        assert r["num_valid_queries"] == 2
    # No query has hard positives: every hard value is NaN, the means too.
    assert math.isnan(results["hard"]["mAP"])
    assert np.isnan(results["hard"]["aps"]).all()
    assert results["hard"]["num_valid_queries"] == 0


# ----------------------------------------------------------------------------------------------
# Hand-built ground truth with junk, worked out by hand.


def test_compute_metrics_hand_built_with_junk():
    ranks = np.array([[0, 3, 2, 1, 4, 5], [2, 0, 1, 3, 4, 5]])
    gnd = [
        {"easy": [1], "hard": [3], "junk": [0], "bbx": [0, 0, 1, 1]},
        {"easy": [2], "hard": [], "junk": [], "bbx": [0, 0, 1, 1]},
    ]
    r = revisited.compute_metrics(ranks, gnd, kappas=(1, 5))
    # Query 0, easy: positives {1}, junk {0, 3}. Id 1 sits at position 3 behind 2 junk -> rank 1.
    #   AP = (0/1 + 1/2) / 2 = 0.25. P@1: kq=min(2,1)=1 -> 0/1. P@5: kq=min(2,5)=2 -> 1/2.
    # Query 1, easy: id 2 first -> AP 1, P@k 1, R@k 1.
    np.testing.assert_allclose(r["easy"]["aps"], [0.25, 1.0])
    assert r["easy"]["mAP"] == pytest.approx(0.625)
    np.testing.assert_allclose(r["easy"]["P@k"][0], [0.0, 0.5])
    np.testing.assert_allclose(r["easy"]["R@k"][0], [0.0, 1.0])
    np.testing.assert_allclose(r["easy"]["mP@k"], [0.5, 0.75])
    # Query 0, medium: positives {1, 3}, junk {0}: positions [1, 3] -> ranks [0, 2].
    #   AP = (1+1)/2/2 + (1/2 + 2/3)/2/2 = 0.5 + 0.291667 = 0.791667.
    #   P@1 = 1; P@5: kq=min(3,5)=3 -> 2/3. R@1 = 1/2, R@5 = 1.
    np.testing.assert_allclose(r["medium"]["aps"], [0.5 + 7 / 24, 1.0])
    assert r["medium"]["mAP"] == pytest.approx((0.5 + 7 / 24 + 1.0) / 2)
    np.testing.assert_allclose(r["medium"]["P@k"][0], [1.0, 2 / 3])
    np.testing.assert_allclose(r["medium"]["R@k"][0], [0.5, 1.0])
    # Query 0, hard: positives {3}, junk {0, 1}: position 1 behind 1 junk -> rank 0, AP 1.
    # Query 1 has no hard positives: NaN, left out of the mean.
    np.testing.assert_allclose(r["hard"]["aps"], [1.0, np.nan])
    assert r["hard"]["mAP"] == 1.0
    np.testing.assert_allclose(r["hard"]["mP@k"], [1.0, 1.0])
    assert r["hard"]["num_valid_queries"] == 1


def test_truncated_ranking_counts_missing_positives():
    # 3 positives, only id 7 retrieved (first) in a 2-long shortlist: AP = (1+1)/2/3 = 1/3
    # (revisitop divides by all ground-truth positives), R@2 = 1/3, P@2 capped at rank 1 -> 1.
    r = revisited.compute_metrics(
        np.array([[7, 8]]), [{"easy": [7, 20, 21], "hard": [], "junk": []}], kappas=(1, 2)
    )
    assert r["medium"]["mAP"] == pytest.approx(1 / 3)
    np.testing.assert_allclose(r["medium"]["mR@k"], [1 / 3, 1 / 3])
    np.testing.assert_allclose(r["medium"]["mP@k"], [1.0, 1.0])


def test_no_positive_retrieved_scores_zero():
    r = revisited.compute_metrics(np.array([[1, 2]]), [{"easy": [5], "hard": [], "junk": []}], [1])
    assert r["medium"]["mAP"] == 0.0
    np.testing.assert_array_equal(r["medium"]["mP@k"], [0.0])


@pytest.mark.parametrize(
    "ranks, gnd, kappas, message",
    [
        (np.zeros((2, 3), dtype=int), [{"easy": [], "hard": [], "junk": []}], (1,), "2 rows"),
        (np.zeros((1, 3)), [{"easy": [], "hard": [], "junk": []}], (1,), "int array"),
        (np.arange(3)[None], [{"easy": [0], "hard": [], "junk": []}], (1, 5), "up to 5"),
        (np.array([[0, 0, 1]]), [{"easy": [0], "hard": [], "junk": []}], (1,), "more than once"),
        (np.array([[0, 1]]), [{"easy": [0], "junk": []}], (1,), r"query 0: .* lacks \['hard'\]"),
    ],
)
def test_compute_metrics_rejects_bad_input(ranks, gnd, kappas, message):
    with pytest.raises(ValueError, match=message):
        revisited.compute_metrics(ranks, gnd, kappas)


def test_unknown_protocol():
    with pytest.raises(ValueError, match="unknown protocol 'medum'"):
        revisited.protocol_ground_truth({"easy": [], "hard": [], "junk": []}, "medum")


# ----------------------------------------------------------------------------------------------
# Cross-check against a direct, loop-by-loop transcription of revisitop's compute_map.


def _reference_compute_map(ranks_t, gnd, kappas):
    """revisitop-style: ranks_t is [num_index, num_queries]; gnd entries have 'ok' and 'junk'."""
    nq = len(gnd)
    aps = np.zeros(nq)
    prs = np.zeros((nq, len(kappas)))
    nempty = 0
    total_ap = 0.0
    total_pr = np.zeros(len(kappas))
    for i in range(nq):
        ok = list(gnd[i]["ok"])
        if not ok:
            aps[i] = float("nan")
            prs[i] = float("nan")
            nempty += 1
            continue
        column = list(ranks_t[:, i])
        pos = [p for p, image in enumerate(column) if image in ok]
        junk = [p for p, image in enumerate(column) if image in list(gnd[i]["junk"])]
        shift, ij = 0, 0
        for ip in range(len(pos)):
            while ij < len(junk) and pos[ip] > junk[ij]:
                shift += 1
                ij += 1
            pos[ip] -= shift
        ap = 0.0
        for j, rank in enumerate(pos):
            precision_0 = 1.0 if rank == 0 else j / rank
            precision_1 = (j + 1) / (rank + 1)
            ap += (precision_0 + precision_1) / 2.0 / len(ok)
        aps[i] = ap
        total_ap += ap
        pos_1 = [p + 1 for p in pos]
        for j, k in enumerate(kappas):
            kq = min(max(pos_1), k)
            prs[i, j] = sum(1 for p in pos_1 if p <= kq) / kq
        total_pr += prs[i]
    return total_ap / (nq - nempty), total_pr / (nq - nempty), aps, prs


def test_matches_independent_revisitop_transcription():
    rng = np.random.default_rng(0)
    num_index, num_queries, kappas = 40, 8, (1, 5, 10)
    ranks = np.stack([rng.permutation(num_index) for _ in range(num_queries)])
    gnd = []
    for q in range(num_queries):
        ids = rng.permutation(num_index)
        sizes = rng.integers(0, 6, size=3)
        if q == 3:
            sizes[1] = 0  # a query without hard positives: NaN under the hard protocol
        easy = ids[: sizes[0]]
        hard = ids[sizes[0] : sizes[0] + sizes[1]]
        junk = ids[sizes[0] + sizes[1] : sizes.sum()]
        gnd.append({"easy": easy, "hard": hard, "junk": junk})
    results = revisited.compute_metrics(ranks, gnd, kappas)
    for protocol in revisited.PROTOCOLS:
        ok_junk = []
        for entry in gnd:
            positives, junk = revisited.protocol_ground_truth(entry, protocol)
            ok_junk.append({"ok": positives, "junk": junk})
        mean_ap, mean_pr, aps, prs = _reference_compute_map(ranks.T, ok_junk, kappas)
        assert results[protocol]["mAP"] == pytest.approx(mean_ap, abs=1e-12)
        np.testing.assert_allclose(results[protocol]["mP@k"], mean_pr, atol=1e-12)
        np.testing.assert_allclose(results[protocol]["aps"], aps, atol=1e-12)
        np.testing.assert_allclose(results[protocol]["P@k"], prs, atol=1e-12)


# ----------------------------------------------------------------------------------------------
# metrics.txt


def _official_example():
    return {
        "hard": {"mAP": 0.7, "mP@k": np.array([1.0, 0.8]), "mR@k": np.array([0.5, 0.8])},
        "medium": {"mAP": 0.9, "mP@k": np.array([1.0, 1.0]), "mR@k": np.array([0.5, 1.0])},
    }


def test_save_metrics_file_matches_official_text(tmp_path):
    path = str(tmp_path / "metrics.txt")
    revisited.save_metrics_file(path, _official_example(), kappas=[1, 5])
    with open(path) as f:
        assert f.read() == (
            "hard\n"
            "  mAP=70.0\n"
            "  mP@k[1 5] [100.  80.]\n"
            "  mR@k[1 5] [50. 80.]\n"
            "medium\n"
            "  mAP=90.0\n"
            "  mP@k[1 5] [100. 100.]\n"
            "  mR@k[1 5] [ 50. 100.]\n"
        )


def test_save_and_read_round_trip(tmp_path):
    path = str(tmp_path / "metrics.txt")
    revisited.save_metrics_file(path, _official_example(), kappas=[1, 5])
    metrics, kappas = revisited.read_metrics_file(path)
    assert kappas == [1, 5]
    assert sorted(metrics) == ["hard", "medium"]
    for name, expected in _official_example().items():
        assert metrics[name]["mAP"] == expected["mAP"]
        np.testing.assert_array_equal(metrics[name]["mP@k"], expected["mP@k"])
        np.testing.assert_array_equal(metrics[name]["mR@k"], expected["mR@k"])


def test_default_kappas_line_and_rounding():
    text = revisited.format_metrics(
        {
            "medium_after_gv": {
                "mAP": 0.812345,
                "mP@k": [0.97142857, 0.9, 0.8571],
                "mR@k": [1, 1, 1],
            }
        },
        kappas=(1, 5, 10),
    )
    assert text.splitlines() == [
        "medium_after_gv",
        "  mAP=81.23",
        "  mP@k[ 1  5 10] [97.14 90.   85.71]",
        "  mR@k[ 1  5 10] [100. 100. 100.]",
    ]


def test_read_accepts_old_numpy_spacing(tmp_path):
    path = tmp_path / "metrics.txt"
    path.write_text("hard\n  mAP=70.0\n  mP@k[1 5] [ 100.   80.]\n  mR@k[1 5] [ 50.  80.]\n")
    metrics, kappas = revisited.read_metrics_file(str(path))
    assert kappas == [1, 5]
    np.testing.assert_allclose(metrics["hard"]["mP@k"], [1.0, 0.8])


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "hard\n  mAP=70.0\n  mP@k[1 5] [100. 80.]\n  mR@k[1 5] [50. 80.]\n" * 2,
            r"metrics.txt:5: protocol 'hard' appears a second time",
        ),
        ("hard\n  mAP=70.0\n  mP@k[1 5] [100. 80.]\n", "multiple of 4"),
        ("hard\n  mAP=x\n  mP@k[1 5] [100. 80.]\n  mR@k[1 5] [50. 80.]\n", r":2: malformed mAP"),
        ("hard\n  mAP=7\n  mP@k[1 5] [100.]\n  mR@k[1 5] [50. 80.]\n", r":3: 2 ranks but 1"),
        ("hard\n  mAP=7\n  mP@k[1 5] [1. 8.]\n  mR@k[1 10] [5. 8.]\n", r":3: inconsistent"),
        ("hard\n  mAP=7\n  mR@k[1 5] [1. 8.]\n  mR@k[1 5] [5. 8.]\n", r":3: expected a line"),
    ],
)
def test_read_rejects_malformed(tmp_path, text, message):
    path = tmp_path / "metrics.txt"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        revisited.read_metrics_file(str(path))
