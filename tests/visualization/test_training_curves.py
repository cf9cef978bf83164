import json

import numpy as np
import pytest
from PIL import Image

from delg_tf.visualization import training_curves


def _write(path, lines):
    path.write_text("".join(lines), encoding="utf-8")
    return path


def _entry(step, total):
    return (
        json.dumps(
            {
                "step": step,
                "total": total,
                "global_ce": total / 2,
                "attention_ce": 1.0,
                "reconstruction_mse": 0.5,
                "global_accuracy": 0.1,
                "attention_accuracy": 0.2,
                "learning_rate": 0.01 * (1 - step / 100),
            }
        )
        + "\n"
    )


def test_read_metrics_splits_validation_sorts_and_keeps_the_last_duplicate(tmp_path):
    _write(
        tmp_path / "metrics.jsonl",
        [
            _entry(20, 5.0),
            _entry(10, 9.0),
            json.dumps({"step": 20, "validation": {"global_accuracy": 0.3}}) + "\n",
            "\n",
            _entry(20, 4.0),  # a resumed run logged step 20 again
        ],
    )
    train, validation = training_curves.read_metrics(str(tmp_path))  # a logdir works too
    assert [e["step"] for e in train] == [10, 20]
    assert train[1]["total"] == 4.0
    assert validation == [{"step": 20, "global_accuracy": 0.3}]


def test_read_metrics_tolerates_a_cut_last_line_but_names_a_bad_line(tmp_path):
    path = _write(tmp_path / "a.jsonl", [_entry(10, 9.0), '{"step": 20, "tot'])
    train, _ = training_curves.read_metrics(str(path))
    assert [e["step"] for e in train] == [10]
    bad = _write(tmp_path / "b.jsonl", ["not json\n", _entry(10, 9.0)])
    with pytest.raises(ValueError, match=r"b.jsonl:1"):
        training_curves.read_metrics(str(bad))
    no_step = _write(tmp_path / "c.jsonl", [_entry(10, 9.0), '{"total": 1}\n'])
    with pytest.raises(ValueError, match=r"c.jsonl:2: .*'step'"):
        training_curves.read_metrics(str(no_step))
    with pytest.raises(FileNotFoundError, match="missing.jsonl"):
        training_curves.read_metrics(str(tmp_path / "missing.jsonl"))


def test_write_training_curves_writes_a_png(tmp_path):
    path = _write(
        tmp_path / "metrics.jsonl",
        [_entry(s, 10.0 - s / 10) for s in range(10, 101, 10)]
        + [json.dumps({"step": 100, "validation": {"global_accuracy": 0.5}}) + "\n"],
    )
    out = tmp_path / "figs" / "curves.png"
    assert training_curves.write_training_curves(str(path), str(out), title="t") == 10
    with Image.open(out) as image:
        assert image.format == "PNG"
        assert image.size == (1100, 750)
        pixels = np.asarray(image.convert("RGB"))
    assert pixels.std() > 10  # something was drawn


def test_write_training_curves_refuses_a_file_without_training_entries(tmp_path):
    path = _write(tmp_path / "m.jsonl", [json.dumps({"step": 1, "validation": {}}) + "\n"])
    with pytest.raises(ValueError, match="no training entries"):
        training_curves.write_training_curves(str(path), str(tmp_path / "x.png"))
