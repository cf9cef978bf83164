import dataclasses

from delg_tf.benchmark import machine
from delg_tf.benchmark.report import Report
from delg_tf.benchmark.search_part import run_search


def test_search_figures_per_setting_with_recall_and_speedup(quick_settings):
    report = Report()
    run_search(quick_settings, report)
    figures = {f.name: f for f in report.figures}
    assert report.skipped == []
    expected = {
        "search.3000.exact.queries_per_second": ("queries/s", ""),
        "search.3000.ivf_flat.build_seconds": ("s", ""),
        "search.3000.hnsw.build_seconds": ("s", ""),
        "search.3000.hnsw.ef_search=32.queries_per_second": ("queries/s", ""),
        "search.3000.hnsw.ef_search=32.recall_at_10": ("fraction", ">= 0.95"),
    }
    for nprobe in (4, 16):
        expected[f"search.3000.ivf_flat.nprobe={nprobe}.queries_per_second"] = ("queries/s", "")
        expected[f"search.3000.ivf_flat.nprobe={nprobe}.recall_at_10"] = ("fraction", ">= 0.95")
    for name, (unit, target) in expected.items():
        assert (figures[name].unit, figures[name].target) == (unit, target), name
    speedups = [n for n in figures if n.endswith("speedup_at_recall_0.95")]
    assert "search.3000.ivf_flat.speedup_at_recall_0.95" in speedups
    for name in speedups:
        assert figures[name].unit == "x" and figures[name].target == ">= 10"
    assert set(figures) == set(expected) | set(speedups)
    exact = figures["search.3000.exact.queries_per_second"]
    assert len(exact.runs) == quick_settings.repeats
    assert exact.note.startswith("40 queries, top-10; index 3000x32 (8 clusters) held as float16")


def test_search_skips_a_size_the_memory_cannot_hold(quick_settings, monkeypatch, capsys):
    monkeypatch.setattr(machine, "available_memory_bytes", lambda: 2**30)
    report = Report()
    run_search(quick_settings, report)
    assert report.figures == []
    assert report.skipped == [
        {
            "what": "search.3000",
            "reason": "the index needs ~0.0 GiB (+3.0 GiB margin), 1.0 GiB available",
        }
    ]
    assert "SKIPPED search.3000: the index needs" in capsys.readouterr().out


def test_search_skips_faiss_but_keeps_exact_when_only_the_index_fits(quick_settings, monkeypatch):
    s = dataclasses.replace(quick_settings, memory_margin_gib=0.0)
    data_bytes = 3000 * 32 * 2  # float16
    monkeypatch.setattr(machine, "available_memory_bytes", lambda: data_bytes + 1)
    report = Report()
    run_search(s, report)
    assert [f.name for f in report.figures] == ["search.3000.exact.queries_per_second"]
    assert [skipped["what"] for skipped in report.skipped] == ["search.3000.faiss"]
    assert report.skipped[0]["reason"].startswith("index + faiss need ~")
