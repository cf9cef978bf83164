"""The tf-keras reference part: workers in their own processes, interleaved, one-line errors.

The networks are the tiny ones (--quick), so this checks the machinery, not speed.
"""

import subprocess
import sys

import pytest

from delg_tf.benchmark.report import Report
from delg_tf.benchmark.training_reference_part import (
    MISSING_TF_KERAS,
    OURS,
    REFERENCE,
    StepWorker,
    reference_timings,
    run_training_reference,
    tf_keras_installed,
)


def test_binary_names_the_missing_tf_keras_in_one_line():
    # sys.modules[name] = None is how Python marks a package as not importable.
    code = (
        "import sys; sys.modules['tf_keras'] = None; "
        "sys.argv = ['delg-benchmark', '--parts=training_reference']; "
        "from delg_tools.benchmark import run; run()"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1] == f"delg-benchmark: {MISSING_TF_KERAS}"


def test_part_reports_the_reference_and_every_ratio(quick_settings):
    if not tf_keras_installed():
        # CI (no benchmark extra): the reference worker fails in one line naming the package,
        # and our steps run through the same machinery.
        worker = StepWorker(REFERENCE, 32, 2, 5, tiny=True)
        with pytest.raises(RuntimeError, match=r"tf_keras_resnet50 failed \(exit 1\).*tf_keras"):
            worker.wait_ready()
        seconds, peaks = reference_timings(OURS, 32, 2, 5, repeats=2, tiny=True)
        assert set(seconds) == set(peaks) == set(OURS)
        for step in OURS:
            assert set(seconds[step]) == {"train", "infer", "train_cpu", "infer_cpu"}
            assert all(len(runs) == 2 and min(runs) > 0 for runs in seconds[step].values())
            assert 0.2 < peaks[step] < 8  # each worker is its own TensorFlow process
        return
    report = Report()
    run_training_reference(quick_settings, report)
    names = {f.name for f in report.figures}
    for step in (REFERENCE, *OURS):
        for mode in ("train", "infer"):
            figure = report.get(f"training_reference.{step}.{mode}_images_per_second")
            assert figure is not None and len(figure.runs) == quick_settings.repeats
            assert all(r > 0 for r in figure.runs)
        # Each worker is its own TensorFlow process, with its own resident set.
        assert 0.2 < report.get(f"training_reference.{step}.peak_rss_gib").value < 8
    for step in OURS:
        for mode in ("train", "infer", "train_cpu", "infer_cpu"):
            assert f"training_reference.{step}_over_tf_keras.{mode}" in names
    assert "[--quick: tiny networks]" in report.figures[0].note
