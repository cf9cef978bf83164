"""Tests for the delg-gldv2-metrics binary."""

import subprocess
import sys

from delg_tf.evaluation import gldv2_io
from delg_tools import gldv2_metrics as tool


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _run(*args):
    return subprocess.run(
        [sys.executable, "-m", "delg_tools.gldv2_metrics", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_retrieval_report_prints_public_and_private(tmp_path):
    solution = _write(
        tmp_path,
        "solution.csv",
        "id,images,Usage\nq1,a b,Public\nq2,c,Private\nq3,d,Private\nq4,None,Ignored\n",
    )
    # q1: hits at 1 and 3 -> (1 + 2/3) / 2 = 0.833333. q2: hit at 2 -> 0.5. q3: none -> 0.
    # Private mAP = (0.5 + 0) / 2 = 0.25. Public P@1 = 100, Private P@1 = 0, P@5 = (1/5)/2 = 10.
    predictions = _write(
        tmp_path, "predictions.csv", "id,images\nq1,a x b\nq2,y c\nq3,z\nq4,d\nunknown,a\n"
    )
    result = _run(f"--predictions_path={predictions}", f"--solution_path={solution}")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Task: retrieval" in out
    assert "skipped 1 Ignored and 1 unknown ids" in out
    assert "(Public)  Mean Average Precision: 0.833333" in out
    assert "(Private) Mean Average Precision: 0.250000" in out
    assert "(Public)  Mean precisions: P@1: 100.00, P@5: 40.00," in out
    assert "(Private) Mean precisions: P@1: 0.00, P@5: 10.00," in out
    # Positions: Public 1 -> mean/median 1; Private 2 and 101 -> mean 51.5, median 51.5.
    assert "(Private) Mean position: 51.50, median position: 51.50" in out


def test_recognition_report_lines(tmp_path):
    solution = gldv2_io.read_solution(
        _write(tmp_path, "s.csv", "id,landmarks,Usage\na,1,Public\nb,,Public\nc,5,Private\n")
    )
    predictions = gldv2_io.read_predictions(
        _write(tmp_path, "p.csv", "id,landmarks\na,1 0.2\nb,3 0.9\nc,6 0.5\n"), solution
    )
    lines = tool.recognition_report(solution, predictions)
    # Public: b (0.9, no landmark: wrong, 0/1) then a (right, 1/2); 1 image with GT -> 0.5.
    # Ignoring non-landmarks: a right at 1/1 -> 1. Private: c wrong -> 0.
    assert "(Public)  Global Average Precision: 0.500000" in lines
    assert "(Private) Global Average Precision: 0.000000" in lines
    assert "(Public)  Global Average Precision ignoring non-landmark queries: 1.000000" in lines
    assert "(Public)  Top-1 accuracy: 100.00" in lines
    assert "(Private) Top-1 accuracy: 0.00" in lines


def test_task_flag_mismatch_and_malformed_file_fail_clearly(tmp_path):
    solution = _write(tmp_path, "solution.csv", "id,landmarks,Usage\na,1,Public\n")
    predictions = _write(tmp_path, "predictions.csv", "id,landmarks\na,1\n")
    result = _run(f"--predictions_path={predictions}", f"--solution_path={solution}")
    assert result.returncode != 0
    assert "predictions.csv:2: prediction for 'a' must be '<landmark> <score>'" in result.stderr
    result = _run(
        f"--predictions_path={predictions}", f"--solution_path={solution}", "--task=retrieval"
    )
    assert result.returncode != 0
    assert "solution.csv:1: header is for recognition, but task retrieval" in result.stderr
