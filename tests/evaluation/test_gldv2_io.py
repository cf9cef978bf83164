"""Tests for reading GLDv2 solution and prediction CSV files."""

import logging

import pytest

from delg_tf.evaluation import gldv2_io as io


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


RECOGNITION_SOLUTION = (
    "id,landmarks,Usage\n"
    "a,1,Public\n"
    "b,2 3,Private\n"
    "c,,Public\n"  # a non-landmark test image
    "d,None,Ignored\n"  # ignored rows are not parsed
)
RETRIEVAL_SOLUTION = "id,images,Usage\nq1,x y,Public\nq2,z,Private\nq3,None,Ignored\n"


def test_read_recognition_solution(tmp_path):
    solution = io.read_solution(_write(tmp_path, "sol.csv", RECOGNITION_SOLUTION))
    assert solution.task == io.RECOGNITION
    assert solution.public == {"a": [1], "c": []}
    assert solution.private == {"b": [2, 3]}
    assert solution.ignored == {"d"}


def test_read_retrieval_solution(tmp_path):
    solution = io.read_solution(_write(tmp_path, "sol.csv", RETRIEVAL_SOLUTION), io.RETRIEVAL)
    assert solution.public == {"q1": ["x", "y"]}
    assert solution.private == {"q2": ["z"]}
    assert solution.ignored == {"q3"}


@pytest.mark.parametrize(
    "text, message",
    [
        ("id,landmarks,Usage\na,1,Public\nb,2,Secret\n", r"sol.csv:3: Usage 'Secret' for 'b'"),
        ("id,landmarks,Usage\na,1\n", r"sol.csv:2: expected 3 columns, got 2"),
        ("id,landmarks,Usage\na,x1,Public\n", r"sol.csv:2: landmark id 'x1' is not an integer"),
        ("id,landmarks,Usage\na,1,Public\na,2,Private\n", r"sol.csv:3: test id 'a' is repeated"),
        ("id,landmarks,Use\n", r"sol.csv:1: third column is 'Use'"),
        ("", r"sol.csv: empty file"),
        ("id,landmarks,Usage\n,1,Public\n", r"sol.csv:2: empty test id"),
    ],
)
def test_malformed_solution(tmp_path, text, message):
    with pytest.raises(io.CsvFormatError, match=message):
        io.read_solution(_write(tmp_path, "sol.csv", text))


def test_solution_task_mismatch(tmp_path):
    with pytest.raises(io.CsvFormatError, match="header is for retrieval"):
        io.read_solution(_write(tmp_path, "sol.csv", RETRIEVAL_SOLUTION), io.RECOGNITION)


def test_read_recognition_predictions(tmp_path, caplog):
    solution = io.read_solution(_write(tmp_path, "sol.csv", RECOGNITION_SOLUTION))
    text = (
        "id,landmarks\n"
        "a,1 0.75 \n"  # trailing space is tolerated
        "b,\n"  # empty prediction: no entry
        "c,7 1e-3\n"
        "d,4 0.9\n"  # ignored id
        "zz,5 0.1\n"  # not in the solution: skipped and counted
    )
    with caplog.at_level(logging.WARNING):
        predictions = io.read_predictions(_write(tmp_path, "pred.csv", text), solution)
    assert predictions.public == {"a": (1, 0.75), "c": (7, 0.001)}
    assert predictions.private == {}
    assert predictions.num_ignored == 1
    assert predictions.num_unknown == 1
    assert "1 prediction rows have ids not in the solution" in caplog.text


def test_read_retrieval_predictions(tmp_path):
    solution = io.read_solution(_write(tmp_path, "sol.csv", RETRIEVAL_SOLUTION))
    text = "id,images\nq1,y  x x\nq2,\nq3,x\n"
    predictions = io.read_predictions(_write(tmp_path, "pred.csv", text), solution)
    assert predictions.public == {"q1": ["y", "x", "x"]}  # order and duplicates kept
    assert predictions.private == {}
    assert predictions.num_ignored == 1


@pytest.mark.parametrize(
    "text, message",
    [
        ("id,landmarks\na,1\n", r"pred.csv:2: prediction for 'a' must be '<landmark> <score>'"),
        ("id,landmarks\na,1 0.5 7\n", r"pred.csv:2: prediction for 'a'"),
        ("id,landmarks\na,1 high\n", r"pred.csv:2: score 'high' is not a number"),
        ("id,landmarks\na,1 nan\n", r"pred.csv:2: score 'nan' is not finite"),
        ("id,landmarks\na,one 0.5\n", r"pred.csv:2: landmark id 'one'"),
        ("id,landmarks\na,1 0.5\nc,2 0.5\na,1 0.5\n", r"pred.csv:4: test id 'a' is repeated"),
        ("id,landmarks\na,1 0.5,extra\n", r"pred.csv:2: expected 2 columns, got 3"),
        ("id,images\na,x\n", r"pred.csv:1: header is for retrieval, but task recognition"),
    ],
)
def test_malformed_recognition_predictions(tmp_path, text, message):
    solution = io.read_solution(_write(tmp_path, "sol.csv", RECOGNITION_SOLUTION))
    with pytest.raises(io.CsvFormatError, match=message):
        io.read_predictions(_write(tmp_path, "pred.csv", text), solution)
