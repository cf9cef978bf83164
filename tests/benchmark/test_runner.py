import dataclasses

import pytest

from delg_tf.benchmark.runner import PARTS, run_benchmark


def test_parts_in_running_order():
    assert PARTS == (
        "reranking",
        "training_free",
        "search",
        "pipeline",
        "model",
        "training",
        "training_reference",
        "extraction",
    )


def test_unknown_parts_are_named(quick_settings):
    with pytest.raises(ValueError, match=r"unknown parts \['bogus'\]"):
        run_benchmark(quick_settings, ["search", "bogus"])


def test_runs_parts_in_order_and_records_the_run(quick_settings, tmp_path, capsys):
    run = run_benchmark(quick_settings, ["search", "reranking"], work_dir=str(tmp_path))
    assert run.parts == ["reranking", "search"]
    assert list(run.part_seconds) == list(run.peak_rss_gib_after_part) == run.parts
    assert run.report.get("reranking.same_order") is not None
    assert run.report.get("search.3000.exact.queries_per_second") is not None
    assert list(tmp_path.iterdir()) == [], "the scratch directory is removed"
    out = capsys.readouterr().out
    assert out.startswith("load average before: ")
    assert "wall time " in out.splitlines()[-1]

    doc = run.to_json("delg-benchmark --quick", quick=True)
    assert list(doc) == [
        "command",
        "started_unix",
        "wall_seconds",
        "part_seconds",
        "load_average_after",
        "max_rss_gib",
        "peak_rss_gib_after_part",
        "machine",
        "settings",
        "parts",
        "figures",
        "skipped",
    ]
    assert doc["command"] == "delg-benchmark --quick"
    assert doc["settings"] == dataclasses.asdict(quick_settings) | {"quick": True}
    assert doc["figures"] == [f.to_json() for f in run.report.figures]
    assert doc["skipped"] == [] and doc["max_rss_gib"] > 0
