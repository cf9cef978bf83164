from delg_tf.benchmark.report import Report
from delg_tf.benchmark.training_free_part import run_training_free


def test_training_free_figures_with_their_units_and_targets(quick_settings, capsys):
    report = Report()
    run_training_free(quick_settings, report)
    figures = {f.name: f for f in report.figures}
    expected = {}
    for name, key, unit, target in (
        ("superglobal", "ms_per_query", "ms/query", "<= 5"),
        ("aqe", "ms_per_query", "ms/query", ""),
        ("dba", "seconds", "s", ""),
    ):
        expected[f"training_free.{name}.d16.{key}"] = (unit, target)
        expected[f"training_free.{name}.d16.cpu_{key}"] = (unit, "")  # sums the cores: no target
    assert {name: (f.unit, f.target) for name, f in figures.items()} == expected
    for name, f in figures.items():
        assert len(f.runs) == quick_settings.repeats and all(run > 0 for run in f.runs), name
    superglobal = figures["training_free.superglobal.d16.ms_per_query"]
    assert superglobal.note.startswith("wall time; SuperGlobal M=50 K=9 beta=0.15")
    assert "8 queries, index 300x16" in superglobal.note
    cpu_note = figures["training_free.dba.d16.cpu_seconds"].note
    assert cpu_note.startswith("process CPU time, all threads;")
    assert len(capsys.readouterr().out.splitlines()) == 6


def test_full_settings_measure_the_demo_and_official_dimensions(full_settings):
    assert full_settings.training_free_dims == (128, 2048)
    assert full_settings.superglobal_candidates == 400
    assert full_settings.training_free_queries == 70
