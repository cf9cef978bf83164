from delg_tf.benchmark.report import Report
from delg_tf.benchmark.training_free_part import run_training_free


def test_training_free_figures_with_their_units_and_targets(quick_settings, capsys):
    report = Report()
    run_training_free(quick_settings, report)
    figures = {f.name: f for f in report.figures}
    assert {name: (f.unit, f.target) for name, f in figures.items()} == {
        "training_free.superglobal.d16.ms_per_query": ("ms/query", "<= 5"),
        "training_free.aqe.d16.ms_per_query": ("ms/query", ""),
        "training_free.dba.d16.seconds": ("s", ""),
    }
    superglobal = figures["training_free.superglobal.d16.ms_per_query"]
    assert len(superglobal.runs) == quick_settings.repeats
    assert all(run > 0 for run in superglobal.runs)
    assert "M=50 K=9 beta=0.15" in superglobal.note
    assert "8 queries, index 300x16" in superglobal.note
    assert len(figures["training_free.dba.d16.seconds"].runs) == 2
    assert len(capsys.readouterr().out.splitlines()) == 3


def test_full_settings_measure_the_demo_and_official_dimensions(full_settings):
    assert full_settings.training_free_dims == (128, 2048)
    assert full_settings.superglobal_candidates == 400
