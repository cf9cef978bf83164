import pytest

from delg_tf.benchmark.extraction_benchmark import (
    benchmark_extraction,
    export_untrained,
    network_gflops,
    network_seconds,
)
from tests.helpers.export_fixtures import TINY_CONFIG


def test_flop_count_scales_with_pyramid_area_and_benchmark_runs(tmp_path):
    model = export_untrained(dict(TINY_CONFIG), str(tmp_path / "export"))
    one = network_gflops(model, (64, 64), [1.0])
    four = network_gflops(model, (64, 64), [2.0])
    both = network_gflops(model, (64, 64), [1.0, 2.0])
    assert one > 0 and both == pytest.approx(one + four)
    assert four == pytest.approx(4 * one, rel=0.15)  # convs dominate: ~proportional to pixels
    result = benchmark_extraction(
        str(tmp_path / "export"), (64, 64), num_images=2, warmup=1, attention_threshold=0.0,
        gflops_per_image=both,
    )  # fmt: skip
    assert len(result.seconds_per_image) == 2 and result.images_per_second > 0
    assert result.gflops_per_second == pytest.approx(both * result.images_per_second)
    assert network_seconds(model, (64, 64), [1.0, 2.0], runs=1) > 0
