from delg_tf.benchmark.report import Report
from delg_tf.benchmark.reranking_part import run_reranking


def test_reranking_figures_with_their_units_and_targets(quick_settings, capsys):
    report = Report()
    run_reranking(quick_settings, report)
    figures = {f.name: f for f in report.figures}
    assert {name: (f.unit, f.target) for name, f in figures.items()} == {
        "reranking.ours_ms_per_query": ("ms/query", ""),
        "reranking.official_ms_per_query": ("ms/query", ""),
        "reranking.speedup": ("x", ">= 20"),
        "reranking.inlier_agreement": ("fraction", ">= 0.9"),
        "reranking.inlier_max_relative_difference": ("fraction", "<= 0.01"),
        "reranking.same_order": ("bool", ">= 1"),
    }
    assert len(figures["reranking.ours_ms_per_query"].runs) == quick_settings.repeats
    assert len(figures["reranking.official_ms_per_query"].runs) == 1
    assert "6 candidates x 120 features, 128-D" in figures["reranking.ours_ms_per_query"].note
    # Planted geometry on clean data: both re-rankers find the same inliers and order.
    assert figures["reranking.inlier_agreement"].value == 1.0
    assert figures["reranking.inlier_max_relative_difference"].value == 0.0
    assert figures["reranking.same_order"].value == 1.0
    assert len(capsys.readouterr().out.splitlines()) == 6
