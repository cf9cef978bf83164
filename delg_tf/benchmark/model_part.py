"""The model figures: bare backbone step against the DELG step at the same size and batch."""

from __future__ import annotations

from delg_tf.benchmark.report import Report, figure, paired_ratio
from delg_tf.benchmark.settings import Settings
from delg_tf.benchmark.trainer_timings import trainer_timings


def run_model(s: Settings, report: Report, work_dir: str, cache: dict) -> None:
    """images/s of both steps and what the DELG heads and losses add to the backbone's."""
    size = f"{s.image_size} px, batch {s.batch_size}, float32, SGD momentum"
    timings = trainer_timings(s, work_dir, cache, "float32")
    bare, delg = timings["backbone"], timings["bare"]
    report.add(
        figure("model.bare_backbone_step_images_per_second",
               [s.batch_size / t for t in bare], "images/s",
               f"{s.backbone} (keras.applications, include_top=False) forward + backward + "
               f"update, loss = mean(conv5); {size}")
    )  # fmt: skip
    report.add(
        figure("model.delg_step_images_per_second", [s.batch_size / t for t in delg],
               "images/s", f"DELG forward + ArcFace({s.num_classes}) + 3 losses + backward + "
               f"update on a constant batch (the Trainer's model and optimizer); {size}")
    )  # fmt: skip
    report.add(
        figure("model.heads_and_losses_overhead",
               [r - 1.0 for r in paired_ratio(delg, bare)], "fraction",
               "DELG step time / bare backbone step time - 1 (runs timed in turn)", "<=", 0.10)
    )  # fmt: skip
