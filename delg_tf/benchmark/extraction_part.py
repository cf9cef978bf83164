"""The extraction figures: SavedModel images/s per dtype and the network's fraction of the peak."""

from __future__ import annotations

import os

from delg_tf.benchmark.report import Report, figure, paired_ratio
from delg_tf.benchmark.settings import Settings


def run_extraction(s: Settings, report: Report, work_dir: str, peaks: dict) -> None:
    """Exports an untrained model per dtype under `work_dir` and times extraction from it."""
    from delg_tf.benchmark.extraction_benchmark import (
        benchmark_extraction,
        export_untrained,
        network_gflops,
        network_seconds,
    )
    from delg_tf.benchmark.timing import release_memory

    # ArcFace is not part of extraction; a small class count keeps the exports small.
    config = {"num_classes": min(s.num_classes, 1000), "backbone": s.backbone}
    h, w = s.extraction_shape
    rates = {}
    gflops = None
    for dtype in s.extraction_dtypes:
        path = os.path.join(work_dir, f"export_{dtype}")
        model = export_untrained(config, path, dtype)
        if gflops is None:
            # The arithmetic does not depend on the dtype; counted on the float32 graph.
            counting = model if dtype == "float32" else export_untrained(
                config, os.path.join(work_dir, "export_count"), "float32")  # fmt: skip
            gflops = network_gflops(counting, (h, w), s.extraction_scales)
        bare = network_seconds(model, (h, w), s.extraction_scales, runs=s.repeats)
        del model
        release_memory()
        result = benchmark_extraction(
            path, (h, w), num_images=s.repeats, warmup=1, attention_threshold=0.0,
            gflops_per_image=gflops,
        )  # fmt: skip
        release_memory()
        name = f"extraction.{s.backbone}_{dtype}"
        runs = [1.0 / t for t in result.seconds_per_image]
        rates[dtype] = runs
        report.add(
            figure(f"{name}.images_per_second", runs, "images/s",
                   f"SavedModel extraction, {h}x{w}, scales {list(s.extraction_scales)}, "
                   f"{gflops:.0f} GFLOP/image (profiler), threshold 0 -> top 1000")
        )  # fmt: skip
        if dtype == "float32":
            report.add(
                figure(f"{name}.matmul_peak_fraction",
                       [gflops * r / peaks["float32"] for r in runs], "fraction",
                       "network GFLOP x extraction images/s / float32 matmul peak "
                       f"{peaks['float32']:.0f} GFLOP/s (whole extraction time)", ">=", 0.60)
            )  # fmt: skip
            report.add(
                figure(f"{name}.network_only_matmul_peak_fraction",
                       [gflops / bare / peaks["float32"]], "fraction",
                       "same with the bare network's time over the pyramid (no resize, no "
                       "selection; median of runs)")
            )  # fmt: skip
    if "float32" in rates and "bfloat16" in rates:
        report.add(
            figure(f"extraction.{s.backbone}.bfloat16_speedup",
                   paired_ratio(rates["bfloat16"], rates["float32"]), "x",
                   "bfloat16 / float32 extraction images/s")
        )  # fmt: skip
