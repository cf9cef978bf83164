import json
import os

import pytest

from delg_tf.benchmark.report import (
    Figure,
    Report,
    figure,
    judge,
    paired_ratio,
    print_table,
    row,
    write_json,
)


def test_judge_at_and_across_the_bound():
    assert judge(20.0, ">=", 20) and not judge(19.9, ">=", 20)
    assert judge(0.10, "<=", 0.10) and not judge(0.11, "<=", 0.10)


def test_figure_without_target_is_not_judged():
    f = figure("a.b", [3, 1, 2], "ms/query", "what")
    assert f.runs == [3.0, 1.0, 2.0] and all(type(r) is float for r in f.runs)
    assert f.value == 2.0
    assert (f.target, f.met, f.note) == ("", None, "what")


def test_figure_target_text_and_met_are_judged_on_the_median():
    f = figure("x", [10.0, 30.0, 25.0], "x", "", ">=", 20)
    assert f.target == ">= 20" and f.met is True
    f = figure("y", [0.2, 0.05, 0.3], "fraction", "", "<=", 0.10)
    assert f.target == "<= 0.1" and f.met is False


def test_figure_json_has_every_field():
    doc = figure("a", [1.0, 2.0], "s", "note", ">=", 1).to_json()
    assert doc == {
        "name": "a",
        "value": 1.5,
        "runs": [1.0, 2.0],
        "unit": "s",
        "target": ">= 1",
        "met": True,
        "note": "note",
    }


def test_paired_ratio_pairs_runs_and_needs_equal_counts():
    assert paired_ratio([2.0, 9.0], [1.0, 3.0]) == [2.0, 3.0]
    with pytest.raises(ValueError):
        paired_ratio([1.0, 2.0], [1.0])


def test_row_shows_median_unit_target_and_met():
    assert row(Figure("n", [1.0], "x", ">= 5", False)).split() == ["n", "1", "x", ">=", "5", "NO"]
    assert row(Figure("n", [7.0], "x", ">= 5", True)).split()[-1] == "yes"
    assert row(Figure("n", [7.0], "x")).rstrip().endswith("x")


def test_report_prints_as_it_adds_and_finds_by_name(capsys):
    report = Report()
    added = report.add(figure("first", [1.0], "s"))
    report.skip("search.1000000", "not enough memory")
    assert report.figures == [added] and report.get("first") is added
    assert report.get("missing") is None
    assert report.skipped == [{"what": "search.1000000", "reason": "not enough memory"}]
    out = capsys.readouterr().out.splitlines()
    assert out == [row(added), "SKIPPED search.1000000: not enough memory"]


def test_table_lists_figures_then_skipped(capsys):
    report = Report()
    report.add(figure("first", [1.0], "s"))
    report.skip("second", "why")
    capsys.readouterr()
    print_table(report)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == ""
    assert lines[1].split() == ["figure", "value", "unit", "target", "met"]
    assert lines[2] == "-" * 96
    assert lines[3] == row(report.figures[0])
    assert lines[4].split() == ["second", "skipped", "why"]


def test_write_json_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "bench.json"
    path.write_text("old")
    write_json(str(path), {"figures": [1, 2]})
    assert json.loads(path.read_text()) == {"figures": [1, 2]}
    assert os.listdir(tmp_path) == ["bench.json"]
