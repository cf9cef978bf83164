"""The training figures: the real loop per dtype and for the demo model, its overhead, its peak."""

from __future__ import annotations

from delg_tf.benchmark.report import Report, figure, paired_ratio
from delg_tf.benchmark.settings import Settings
from delg_tf.benchmark.trainer_timings import trainer_timings


def training_gflops_per_image(s: Settings) -> float:
    """3x the profiler's forward count of the DELG model at the training size (derived)."""
    from delg_tf.benchmark.extraction_benchmark import network_gflops
    from delg_tf.benchmark.timing import release_memory
    from delg_tf.export.checkpoint_loading import build_model

    model = build_model({"num_classes": s.num_classes, "backbone": s.backbone})
    forward = network_gflops(model, (s.image_size, s.image_size), [1.0])
    del model
    release_memory()
    return 3.0 * forward


def add_model_rates(report: Report, name: str, timings: dict, batch_size: int, size: str) -> None:
    """The model's forward and forward+backward+update images/s from a trainer's timings."""
    report.add(
        figure(f"{name}.forward_images_per_second", [batch_size / t for t in timings["forward"]],
               "images/s", f"DELG model forward, inference mode, constant batch; {size}")
    )  # fmt: skip
    report.add(
        figure(f"{name}.forward_backward_images_per_second",
               [batch_size / t for t in timings["bare"]], "images/s",
               f"bare DELG step: forward, losses, backward, update, constant batch; {size}")
    )  # fmt: skip


def run_training(s: Settings, report: Report, work_dir: str, peaks: dict, cache: dict) -> None:
    """Trainer images/s (float32, bfloat16, demo), loop overhead, fraction of the matmul peak."""
    gflops = training_gflops_per_image(s)
    loop_rates = {}
    size = f"{s.image_size} px, batch {s.batch_size}, {s.num_classes} classes"
    for dtype in ("float32", "bfloat16"):
        timings = trainer_timings(s, work_dir, cache, dtype)
        loop, bare = timings["loop"], timings["bare"]
        name = f"training.{s.backbone}_{dtype}"
        rates = report.add(
            figure(f"{name}.images_per_second", [s.batch_size / t for t in loop], "images/s",
                   f"Trainer loop (TFRecord pipeline, clip, schedule, checks); {size}")
        )  # fmt: skip
        loop_rates[dtype] = rates.runs
        add_model_rates(report, name, timings, s.batch_size, size)
        report.add(
            figure(f"{name}.loop_overhead", [r - 1.0 for r in paired_ratio(loop, bare)],
                   "fraction", "Trainer step time / bare step time of the same model and "
                   "optimizer - 1 (runs timed in turn)", "<=", 0.10)
        )  # fmt: skip
        if dtype == "float32":
            report.add(
                figure(f"{name}.matmul_peak_fraction",
                       [gflops * r / peaks["float32"] for r in rates.runs], "fraction",
                       f"{gflops:.1f} GFLOP/image (3x profiler forward count) x images/s / "
                       f"float32 matmul peak {peaks['float32']:.0f} GFLOP/s", ">=", 0.45)
            )  # fmt: skip
    report.add(
        figure(f"training.{s.backbone}.bfloat16_speedup",
               paired_ratio(loop_rates["bfloat16"], loop_rates["float32"]), "x",
               "mixed_bfloat16 / float32 training images/s", ">=", 1.0)
    )  # fmt: skip
    timings = trainer_timings(s, work_dir, cache, "float32", demo=True)
    loop = timings["loop"]
    report.add(
        figure("training.demo.images_per_second", [s.demo_batch_size / t for t in loop],
               "images/s", f"Trainer loop, {s.demo_backbone}, {s.demo_image_size} px, batch "
               f"{s.demo_batch_size}, {s.demo_num_classes} classes, heads "
               f"{s.demo_embedding_dim}/{s.demo_autoencoder_dim}, float32")
    )  # fmt: skip
    add_model_rates(report, "training.demo", timings, s.demo_batch_size,
                    f"{s.demo_backbone}, {s.demo_image_size} px, batch {s.demo_batch_size}, "
                    f"{s.demo_num_classes} classes, heads {s.demo_embedding_dim}/"
                    f"{s.demo_autoencoder_dim}, float32")  # fmt: skip
