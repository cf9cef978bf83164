import dataclasses

from delg_tf.benchmark.pipeline_part import add_pipeline_headroom
from delg_tf.benchmark.report import Report, figure


def _report(*figures):
    report = Report()
    report.figures.extend(figures)
    return report


def test_headroom_is_pipeline_runs_over_the_fastest_training_median(quick_settings):
    s = dataclasses.replace(quick_settings, backbone="resnet50", image_size=512)
    report = _report(
        figure("pipeline.images_per_second", [100.0, 200.0], "images/s"),
        figure("training.resnet50_float32.images_per_second", [9.0, 11.0], "images/s"),
        figure("training.resnet50_bfloat16.images_per_second", [20.0], "images/s"),
    )
    add_pipeline_headroom(s, report)
    headroom = report.get("pipeline.headroom_over_training")
    assert headroom.runs == [5.0, 10.0] and headroom.value == 7.5
    assert headroom.unit == "x" and headroom.target == ">= 5" and headroom.met is True
    assert headroom.note == ("input images/s / fastest resnet50 training images/s at 512 px")


def test_no_headroom_without_both_figures(quick_settings):
    pipeline = figure("pipeline.images_per_second", [100.0], "images/s")
    training = figure("training.resnet_tiny_float32.images_per_second", [10.0], "images/s")
    for report in (_report(pipeline), _report(training), _report()):
        add_pipeline_headroom(quick_settings, report)
        assert report.get("pipeline.headroom_over_training") is None
