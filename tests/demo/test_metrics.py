"""The demo's metrics.json rows from delg-evaluate output."""

import json

import pytest

from delg_tf.demo.metrics import demo_metrics, learning_checks


def test_demo_metrics_converts_evaluate_output_to_percent(tmp_path):
    def write(name, metrics):
        path = tmp_path / name
        path.write_text(json.dumps({"kappas": [1, 5, 10], "metrics": metrics}))
        return str(path)

    entry = {"mAP": 0.25, "mP@k": [1.0, 0.5, 0.2], "mR@k": [0, 0, 0], "aps": [0.25]}
    untrained = write("u.json", {"medium": entry, "hard": entry})
    trained = write(
        "t.json",
        {"medium": entry, "hard": entry, "medium_after_gv": entry, "hard_after_gv": entry},
    )
    metrics = demo_metrics(untrained, trained)
    assert metrics["trained_reranked"]["hard"] == {
        "mAP": 25.0,
        "mP@k": {"1": 100.0, "5": 50.0, "10": 20.0},
    }
    with pytest.raises(ValueError, match="u.json: no complete 'medium_after_gv'"):
        demo_metrics(trained, untrained)
    notes = learning_checks(metrics)
    assert "1.00x the untrained network; target >= 2x: NOT met" in notes[0]
    assert "NOT raised" in notes[1]
