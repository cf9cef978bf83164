from delg_tf.demo import report_markdown as report

METRICS = {
    "untrained": {
        "medium": {"mAP": 20.0, "mP@k": {"1": 50.0, "5": 40.0, "10": 30.0}},
        "hard": {"mAP": 5.5, "mP@k": {"1": 10.0, "5": 8.0, "10": 6.0}},
    },
    "trained_reranked": {
        "medium": {"mAP": 61.234, "mP@k": {"1": 100.0, "5": 90.0}},
        "hard": {"mAP": float("nan"), "mP@k": {}},
    },
}


def test_results_table_rows_columns_and_missing_values():
    table = report.results_table(METRICS, (1, 5, 10)).splitlines()
    assert table[0] == (
        "| model | medium mAP | medium mP@1 | medium mP@5 | medium mP@10 | hard mAP | hard mP@1 "
        "| hard mP@5 | hard mP@10 |"
    )
    assert table[1] == "|" + "---|" * 9
    assert table[2] == (
        "| untrained network, global search | 20.00 | 50.00 | 40.00 | 30.00 | 5.50 | 10.00 "
        "| 8.00 | 6.00 |"
    )
    assert table[3] == (
        "| trained network, global search + re-ranking (RANSAC) | 61.23 | 100.00 | 90.00 | n/a "
        "| n/a | n/a | n/a | n/a |"
    )


def test_text_table_aligns_the_same_numbers():
    lines = report.text_table(METRICS, (1,)).splitlines()
    assert lines[0].split() == ["medium", "mAP", "medium", "mP@1", "hard", "mAP", "hard", "mP@1"]
    assert lines[1].split() == ["untrained", "20.00", "50.00", "5.50", "10.00"]
    assert lines[2].split() == ["trained_reranked", "61.23", "100.00", "n/a", "n/a"]


def test_render_and_write_report(tmp_path):
    figure = report.Figure(str(tmp_path / "figures" / "training_curves.png"), "Losses.")
    text = report.render_report(
        str(tmp_path),
        METRICS,
        (1, 5, 10),
        [figure],
        {"synthetic": (12.5, True), "tfrecords": (2.0, False), "train": (100.0, True)},
        {"preset": "demo"},
        notes=["Learning check: passed."],
    )
    assert "![training curves](figures/training_curves.png)" in text
    assert "- preset: demo" in text
    assert "- Learning check: passed." in text
    assert "| tfrecords | 2.0 (an earlier run) |" in text
    assert "| train | 100.0 |" in text
    assert "| **total** | **114.5** |" in text
    path = tmp_path / "out" / "report.md"
    report.write_report(str(path), text)
    assert path.read_text(encoding="utf-8") == text
    assert [p.name for p in path.parent.iterdir()] == ["report.md"]
