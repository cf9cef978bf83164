r"""delg-benchmark: every speed figure the project promises, in one process and one run.

  delg-benchmark --output_json=benchmark.json                 # everything (~20 min, 2 cores)
  delg-benchmark --parts=reranking,search --search_sizes=100000
  delg-benchmark --quick --output_json=/tmp/b.json            # smoke run on tiny sizes

Parts (run in this order; the numpy-only parts first, so their large arrays are freed before
TensorFlow's allocator grows):
  reranking   ms/query re-ranking a 100-image shortlist of ~1000 local features each: ours
              (matmul matching + vectorised RANSAC) against the official approach (cKDTree +
              skimage RANSAC), same data, with inlier counts compared.
  search      queries/s of exact search and faiss (IVF-Flat; HNSW up to --hnsw_max_size) on
              clustered synthetic 2048-D descriptors, recall@100 against exact, build times.
  pipeline    images/s of the training input pipeline (TFRecord JPEGs -> decode -> Inception
              crop -> resize to --image_size -> batch).
  model       bare ResNet50 (keras.applications) forward+backward step against the DELG step
              (heads, ArcFace, losses) at the same size and batch.
  training    the real training loop (Trainer) for R50 float32 and mixed_bfloat16, and for the
              demo model; its cost over the bare DELG step; fraction of the matmul peak.
  extraction  images/s of SavedModel extraction (default 7 scales) at 1024 px, float32 and
              bfloat16; network GFLOP/s (TF profiler count) as a fraction of the matmul peak.

The float32 (and bfloat16) matmul peak (4096x4096 in a tf.function) is measured in the same run
and every figure that is judged against it uses that value. Every figure is the median of
--repeats runs; the JSON holds each run, the machine description and the resolved flags.
Figures measured while other processes load the CPU are meaningless: the load average is
recorded before and after.
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import sys
import tempfile
import time
from typing import Any

from absl import app, flags, logging

PARTS = ("reranking", "search", "pipeline", "model", "training", "extraction")
OFFICIAL_SCALES = (0.25, 0.3536, 0.5, 0.7071, 1.0, 1.4142, 2.0)

flags.DEFINE_list("parts", list(PARTS), f"Parts to run, any of {','.join(PARTS)}.")
flags.DEFINE_integer("repeats", 3, "Timed runs per figure (the median is reported).", lower_bound=1)
flags.DEFINE_string("output_json", None, "Write every figure, its runs and the machine here.")
flags.DEFINE_boolean("quick", False, "Smoke run: tiny models and sizes (seconds, not figures).")
flags.DEFINE_string("work_dir", None, "Scratch directory (TFRecords, exports); default a tmp dir.")
# Training / model / pipeline.
flags.DEFINE_integer("image_size", 512, "Training crop side for pipeline, model and training.")
flags.DEFINE_integer("batch_size", 8, "Batch of the model and training steps.", lower_bound=1)
flags.DEFINE_integer(
    "num_classes", 81313, "Training classes (ArcFace width); 81313 = GLDv2-clean.", lower_bound=1
)
flags.DEFINE_string("backbone", "resnet50", "Backbone of the model/training/extraction figures.")
flags.DEFINE_integer("steps_per_run", 2, "Training-loop steps per timed run.", lower_bound=1)
flags.DEFINE_string("demo_backbone", "resnet_tiny", "Backbone of the demo model.")
flags.DEFINE_integer("demo_image_size", 224, "Training crop side of the demo model.")
flags.DEFINE_integer("demo_batch_size", 16, "Batch of the demo model.", lower_bound=1)
flags.DEFINE_integer("demo_num_classes", 150, "Classes of the demo model.", lower_bound=1)
flags.DEFINE_integer("pipeline_batch_size", 32, "Batch of the input-pipeline figure.")
flags.DEFINE_integer("pipeline_batches", 8, "Batches per timed input-pipeline run.")
flags.DEFINE_list("pipeline_jpeg_shape", ["600", "800"], "H,W of the benchmark JPEGs.")
# Extraction.
flags.DEFINE_list("extraction_shape", ["768", "1024"], "H,W of extraction images (1024 px).")
flags.DEFINE_list("extraction_scales", [str(s) for s in OFFICIAL_SCALES], "Pyramid scales.")
flags.DEFINE_list("extraction_dtypes", ["float32", "bfloat16"], "Export compute dtypes.")
# Re-ranking.
flags.DEFINE_integer("num_candidates", 100, "Shortlist re-ranked per query (official 100).")
flags.DEFINE_integer("num_local_features", 1000, "Local features per image.")
flags.DEFINE_integer("reference_repeats", 1, "Timed runs of the (slow) official approach.")
# Search.
flags.DEFINE_list("search_sizes", ["100000", "1000000"], "Index sizes N of the search figures.")
flags.DEFINE_integer("search_dim", 2048, "Global descriptor dimension.")
flags.DEFINE_integer("search_queries", 1000, "Queries per timed search run.")
flags.DEFINE_integer("search_k", 100, "Neighbours per query (recall@k).")
flags.DEFINE_enum("search_dtype", "float16", ["float16", "float32"], "How the index is held.")
flags.DEFINE_list("faiss_nprobe", ["8", "16", "32"], "IVF-Flat nprobe values searched.")
flags.DEFINE_integer("faiss_nlist", None, "IVF lists (default: FaissIndex's ~4 sqrt(N)).")
flags.DEFINE_list("hnsw_ef_search", ["64", "128", "256"], "HNSW efSearch values searched.")
flags.DEFINE_integer("hnsw_max_size", 100000, "Build HNSW only up to this N (slow to build).")
flags.DEFINE_float("memory_margin_gib", 3.0, "Free memory kept when sizing the search index.")

FLAGS = flags.FLAGS


@dataclasses.dataclass
class Figure:
    """One reported figure: the value of each run, its unit, and the target it is judged by.

    Attributes:
      name: dotted key, e.g. "training.r50_float32.images_per_second".
      runs: the value of each timed run, in `unit`.
      unit: e.g. "images/s", "ms/query", "ratio".
      target: text of the target ("" if none); `met` is None then.
      met: whether the median meets the target.
      note: what exactly was measured.
    """

    name: str
    runs: list[float]
    unit: str
    target: str = ""
    met: bool | None = None
    note: str = ""

    @property
    def value(self) -> float:
        from delg_tf.benchmark_utils import median

        return median(self.runs)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "runs": [float(r) for r in self.runs],
            "unit": self.unit,
            "target": self.target,
            "met": self.met,
            "note": self.note,
        }


@dataclasses.dataclass
class Settings:
    """Resolved sizes (the flags, or the --quick overrides)."""

    repeats: int
    image_size: int
    batch_size: int
    num_classes: int
    backbone: str
    steps_per_run: int
    demo_backbone: str
    demo_image_size: int
    demo_batch_size: int
    demo_num_classes: int
    pipeline_batch_size: int
    pipeline_batches: int
    pipeline_images: int
    pipeline_jpeg_shape: tuple[int, int]
    matmul_size: int
    extraction_shape: tuple[int, int]
    extraction_scales: tuple[float, ...]
    extraction_dtypes: tuple[str, ...]
    num_candidates: int
    num_local_features: int
    reference_repeats: int
    search_sizes: tuple[int, ...]
    search_dim: int
    search_queries: int
    search_k: int
    search_dtype: str
    faiss_nprobe: tuple[int, ...]
    faiss_nlist: int | None
    hnsw_ef_search: tuple[int, ...]
    hnsw_max_size: int
    memory_margin_gib: float


def _ints(values, flag: str) -> tuple[int, ...]:
    try:
        out = tuple(int(v) for v in values)
    except ValueError as e:
        raise app.UsageError(f"--{flag}={','.join(values)}: not integers ({e})") from e
    if any(v <= 0 for v in out):
        raise app.UsageError(f"--{flag}={','.join(values)}: values must be positive")
    return out


def _pair(values, flag: str) -> tuple[int, int]:
    out = _ints(values, flag)
    if len(out) != 2:
        raise app.UsageError(f"--{flag}={','.join(values)}: expected H,W")
    return out


def resolve_settings() -> Settings:
    """Settings from the flags; --quick replaces every size by a tiny one."""
    try:
        scales = tuple(float(s) for s in FLAGS.extraction_scales)
    except ValueError as e:
        raise app.UsageError(f"--extraction_scales: {e}") from e
    for dtype in FLAGS.extraction_dtypes:
        if dtype not in ("float32", "bfloat16"):
            raise app.UsageError(f"--extraction_dtypes: {dtype!r} is not float32 or bfloat16")
    settings = Settings(
        repeats=FLAGS.repeats,
        image_size=FLAGS.image_size,
        batch_size=FLAGS.batch_size,
        num_classes=FLAGS.num_classes,
        backbone=FLAGS.backbone,
        steps_per_run=FLAGS.steps_per_run,
        demo_backbone=FLAGS.demo_backbone,
        demo_image_size=FLAGS.demo_image_size,
        demo_batch_size=FLAGS.demo_batch_size,
        demo_num_classes=FLAGS.demo_num_classes,
        pipeline_batch_size=FLAGS.pipeline_batch_size,
        pipeline_batches=FLAGS.pipeline_batches,
        pipeline_images=256,
        pipeline_jpeg_shape=_pair(FLAGS.pipeline_jpeg_shape, "pipeline_jpeg_shape"),
        matmul_size=4096,
        extraction_shape=_pair(FLAGS.extraction_shape, "extraction_shape"),
        extraction_scales=scales,
        extraction_dtypes=tuple(FLAGS.extraction_dtypes),
        num_candidates=FLAGS.num_candidates,
        num_local_features=FLAGS.num_local_features,
        reference_repeats=FLAGS.reference_repeats,
        search_sizes=_ints(FLAGS.search_sizes, "search_sizes"),
        search_dim=FLAGS.search_dim,
        search_queries=FLAGS.search_queries,
        search_k=FLAGS.search_k,
        search_dtype=FLAGS.search_dtype,
        faiss_nprobe=_ints(FLAGS.faiss_nprobe, "faiss_nprobe"),
        faiss_nlist=FLAGS.faiss_nlist,
        hnsw_ef_search=_ints(FLAGS.hnsw_ef_search, "hnsw_ef_search"),
        hnsw_max_size=FLAGS.hnsw_max_size,
        memory_margin_gib=FLAGS.memory_margin_gib,
    )
    if FLAGS.quick:
        settings = dataclasses.replace(
            settings,
            repeats=min(settings.repeats, 2),
            image_size=64,
            batch_size=2,
            num_classes=10,
            backbone="resnet_tiny",
            steps_per_run=1,
            demo_image_size=64,
            demo_batch_size=2,
            demo_num_classes=10,
            pipeline_batch_size=4,
            pipeline_batches=2,
            pipeline_images=16,
            pipeline_jpeg_shape=(96, 128),
            matmul_size=256,
            extraction_shape=(96, 128),
            extraction_scales=(0.5, 1.0),
            num_candidates=6,
            num_local_features=120,
            reference_repeats=1,
            search_sizes=(3000,),
            search_dim=32,
            search_queries=40,
            search_k=10,
            faiss_nprobe=(4, 16),
            faiss_nlist=None,
            hnsw_ef_search=(32,),
            hnsw_max_size=10000,
        )
    return settings


class Report:
    """Collects figures and skipped parts, printing each figure as it is measured."""

    def __init__(self):
        self.figures: list[Figure] = []
        self.skipped: list[dict[str, str]] = []

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        print(_row(figure), flush=True)
        return figure

    def skip(self, what: str, reason: str) -> None:
        self.skipped.append({"what": what, "reason": reason})
        print(f"SKIPPED {what}: {reason}", flush=True)

    def get(self, name: str) -> Figure | None:
        return next((f for f in self.figures if f.name == name), None)


def _judge(value: float, op: str, bound: float) -> bool:
    return value >= bound if op == ">=" else value <= bound


def _figure(name, runs, unit, note="", op=None, bound=None) -> Figure:
    """A figure; with (op, bound) its target is "op bound" and `met` is judged on the median."""
    figure = Figure(name, [float(r) for r in runs], unit, note=note)
    if op is not None:
        figure.target = f"{op} {bound:g}"
        figure.met = _judge(figure.value, op, bound)
    return figure


def _paired_ratio(numerators: list[float], denominators: list[float]) -> list[float]:
    return [n / d for n, d in zip(numerators, denominators, strict=True)]


# ---------------------------------------------------------------------------------- parts
def run_reranking(s: Settings, report: Report) -> None:
    from delg_tf.retrieval.reranking_benchmark import benchmark_reranking, make_reranking_problem

    problem = make_reranking_problem(s.num_candidates, s.num_local_features)
    result = benchmark_reranking(problem, runs=s.repeats, reference_runs=s.reference_repeats)
    size = f"{s.num_candidates} candidates x {s.num_local_features} features, 128-D"
    report.add(
        _figure("reranking.ours_ms_per_query", [1e3 * t for t in result.ours_seconds], "ms/query",
                f"ours: matmul matching + vectorised RANSAC; {size}")
    )  # fmt: skip
    report.add(
        _figure("reranking.official_ms_per_query", [1e3 * t for t in result.reference_seconds],
                "ms/query", f"official approach: cKDTree + skimage.measure.ransac; {size}")
    )  # fmt: skip
    reference = sorted(result.reference_seconds)[len(result.reference_seconds) // 2]
    report.add(
        _figure("reranking.speedup", [reference / t for t in result.ours_seconds], "x",
                "official median time / ours per run", ">=", 20)
    )  # fmt: skip
    positives = result.true_inliers > 0
    diff = abs(result.ours_inliers - result.reference_inliers)
    relative = diff[positives] / result.reference_inliers[positives].clip(min=1)
    report.add(
        _figure("reranking.inlier_agreement", [result.inlier_agreement], "fraction",
                "candidates whose inlier counts are identical (ours vs official); "
                f"max |diff| {int(diff.max())}; true-match candidates "
                f"{int(positives.sum())}", ">=", 0.9)
    )  # fmt: skip
    report.add(
        _figure("reranking.inlier_max_relative_difference",
                [float(relative.max()) if relative.size else 0.0], "fraction",
                "over candidates that show the landmark: max |ours - official| / official",
                "<=", 0.01)
    )  # fmt: skip
    report.add(
        _figure("reranking.same_order", [float(result.same_order)], "bool",
                "re-ranked order identical to the official one", ">=", 1)
    )  # fmt: skip


def run_search(s: Settings, report: Report) -> None:
    import numpy as np

    from delg_tf.benchmark_utils import available_memory_bytes
    from delg_tf.retrieval.search_benchmark import (
        benchmark_search,
        clustered_descriptors,
        faiss_index_bytes,
    )

    dtype = np.float16 if s.search_dtype == "float16" else np.float32
    itemsize = np.dtype(dtype).itemsize
    margin = int(s.memory_margin_gib * 2**30)
    for n in s.search_sizes:
        clusters = max(8, n // 1000)  # ~1000 members per cluster: top-100 inside the cluster
        data_bytes = n * s.search_dim * itemsize
        faiss_bytes = faiss_index_bytes("ivf_flat", n, s.search_dim)
        if n <= s.hnsw_max_size:
            faiss_bytes = max(faiss_bytes, faiss_index_bytes("hnsw", n, s.search_dim))
        available = available_memory_bytes()
        if available is not None and data_bytes + margin > available:
            report.skip(
                f"search.{n}",
                f"the index needs ~{data_bytes / 2**30:.1f} GiB (+{s.memory_margin_gib} GiB "
                f"margin), {available / 2**30:.1f} GiB available",
            )
            continue
        configs = [("ivf_flat", {"nlist": s.faiss_nlist}, "nprobe", s.faiss_nprobe)]
        if n <= s.hnsw_max_size:
            configs.append(("hnsw", {}, "ef_search", s.hnsw_ef_search))
        if available is not None and data_bytes + faiss_bytes + margin > available:
            report.skip(
                f"search.{n}.faiss",
                f"index + faiss need ~{(data_bytes + faiss_bytes) / 2**30:.1f} GiB "
                f"(+{s.memory_margin_gib} GiB margin), {available / 2**30:.1f} GiB available",
            )
            configs = []
        queries = clustered_descriptors(s.search_queries, s.search_dim, clusters, seed=1)
        index = clustered_descriptors(n, s.search_dim, clusters, seed=0, dtype=dtype)
        results = benchmark_search(index, queries, s.search_k, s.repeats, configs)
        del index
        exact = results[0]
        held = (
            f"index {n}x{s.search_dim} ({clusters} clusters) held as {s.search_dtype} in RAM "
            f"({exact.memory_bytes / 2**30:.2f} GiB), converted to float32 per 32768-row block"
        )
        report.add(
            _figure(f"search.{n}.exact.queries_per_second", exact.queries_per_second_runs,
                    "queries/s", f"{s.search_queries} queries, top-{s.search_k}; {held}")
        )  # fmt: skip
        best: dict[str, Any] = {}
        built: set[str] = set()
        for r in results[1:]:
            kind = r.name.split()[0]
            key = f"search.{n}.{r.name.replace(' ', '.')}"
            memory = f"faiss {kind} holds ~{r.memory_bytes / 2**30:.2f} GiB (float32 vectors)"
            report.add(
                _figure(f"{key}.queries_per_second", r.queries_per_second_runs, "queries/s",
                        f"{memory}; build {r.build_seconds:.1f} s")
            )  # fmt: skip
            report.add(
                _figure(f"{key}.recall_at_{s.search_k}", [r.recall], "fraction",
                        "against exact search", ">=", 0.95)
            )  # fmt: skip
            if kind not in built:
                built.add(kind)
                report.add(
                    _figure(f"search.{n}.{kind}.build_seconds", [r.build_seconds], "s",
                            r.index_params)
                )  # fmt: skip
            speedup = r.queries_per_second / exact.queries_per_second
            if r.recall >= 0.95 and speedup > best.get(kind, (None, -1.0))[1]:
                best[kind] = (r, speedup)
        for kind in ("ivf_flat", "hnsw"):
            if kind in best:
                r, _ = best[kind]
                report.add(
                    _figure(f"search.{n}.{kind}.speedup_at_recall_0.95",
                            _paired_ratio(r.queries_per_second_runs,
                                          exact.queries_per_second_runs),
                            "x", f"fastest setting with recall >= 0.95: {r.name} "
                            f"(recall {r.recall:.4f})", ">=", 10)
                )  # fmt: skip
            elif any(r.name.startswith(kind) for r in results[1:]):
                report.add(
                    _figure(f"search.{n}.{kind}.speedup_at_recall_0.95", [0.0], "x",
                            "no searched setting reached recall 0.95", ">=", 10)
                )  # fmt: skip


def _matmul_peaks(s: Settings, report: Report, dtypes=("float32", "bfloat16")) -> dict:
    import tensorflow as tf

    from delg_tf.extraction.extraction_benchmark import matmul_gflops

    peaks = {}
    for name in dtypes:
        dtype = {"float32": tf.float32, "bfloat16": tf.bfloat16}[name]
        runs = [matmul_gflops(s.matmul_size, dtype, runs=1) for _ in range(max(5, s.repeats))]
        figure = report.add(
            _figure(f"matmul_peak.{name}", runs, "GFLOP/s",
                    f"{s.matmul_size}x{s.matmul_size} matmul in a tf.function")
        )  # fmt: skip
        peaks[name] = figure.value
    return peaks


def run_pipeline(s: Settings, report: Report, work_dir: str) -> str:
    """Returns the TFRecord pattern (reused by the training part)."""
    from delg_tf.data.pipeline_benchmark import benchmark_input_pipeline, write_benchmark_tfrecords

    pattern = write_benchmark_tfrecords(
        os.path.join(work_dir, "tfrecords"), s.pipeline_images, s.pipeline_jpeg_shape,
        num_classes=min(s.num_classes, s.demo_num_classes),
    )  # fmt: skip
    result = benchmark_input_pipeline(
        pattern, s.image_size, s.pipeline_batch_size, s.pipeline_batches, runs=s.repeats
    )
    h, w = s.pipeline_jpeg_shape
    report.add(
        _figure("pipeline.images_per_second", result.images_per_second_runs, "images/s",
                f"{h}x{w} JPEG -> decode -> Inception crop -> {s.image_size} px -> batch "
                f"{s.pipeline_batch_size}")
    )  # fmt: skip
    return pattern


def _training_pattern(s: Settings, work_dir: str) -> str:
    from delg_tf.data.pipeline_benchmark import write_benchmark_tfrecords

    directory = os.path.join(work_dir, "tfrecords")
    if os.path.isdir(directory) and os.listdir(directory):
        return os.path.join(directory, "bench-*")
    return write_benchmark_tfrecords(
        directory, s.pipeline_images, s.pipeline_jpeg_shape,
        num_classes=min(s.num_classes, s.demo_num_classes),
    )  # fmt: skip


def _model_kwargs(backbone: str, num_classes: int) -> dict:
    return {"num_classes": num_classes, "backbone": backbone}


def _training_gflops_per_image(s: Settings) -> float:
    """3x the profiler's forward count of the DELG model at the training size (derived)."""
    from delg_tf.benchmark_utils import release_memory
    from delg_tf.export.checkpoint_loading import build_model
    from delg_tf.extraction.extraction_benchmark import network_gflops

    model = build_model(_model_kwargs(s.backbone, s.num_classes))
    forward = network_gflops(model, (s.image_size, s.image_size), [1.0])
    del model
    release_memory()
    return 3.0 * forward


def _trainer_timings(s: Settings, work_dir: str, cache: dict, dtype: str, demo: bool = False):
    """Paired per-step seconds of one Trainer: "loop", "bare", "forward" and, for the R50 float32
    trainer, the bare keras "backbone" step, timed in turn. Each configuration is built once."""
    key = ("demo" if demo else s.backbone, dtype)
    if key in cache:
        return cache[key]
    from delg_tf.benchmark_utils import release_memory
    from delg_tf.training.config import TrainConfig
    from delg_tf.training.trainer import Trainer
    from delg_tf.training.training_benchmark import (
        backbone_step,
        bare_step,
        forward_step,
        interleaved_seconds,
        loop_steps,
    )

    config = TrainConfig(
        logdir=os.path.join(work_dir, f"train_{key[0]}_{dtype}"),
        train_file_pattern=_training_pattern(s, work_dir),
        num_classes=s.demo_num_classes if demo else s.num_classes,
        backbone=s.demo_backbone if demo else s.backbone,
        image_size=s.demo_image_size if demo else s.image_size,
        batch_size=s.demo_batch_size if demo else s.batch_size,
        mixed_precision=dtype == "bfloat16",
        summary_images=1,
    )
    trainer = Trainer(config)
    steps = {
        "loop": loop_steps(trainer, s.steps_per_run),
        "bare": bare_step(trainer),
        "forward": forward_step(trainer),
    }
    if not demo and dtype == "float32":
        steps["backbone"] = backbone_step(s.backbone, s.image_size, s.batch_size, dtype)
    cache[key] = interleaved_seconds(steps, runs=s.repeats)
    del trainer, steps
    release_memory()
    return cache[key]


def run_model(s: Settings, report: Report, work_dir: str, cache: dict) -> None:
    size = f"{s.image_size} px, batch {s.batch_size}, float32, SGD momentum"
    timings = _trainer_timings(s, work_dir, cache, "float32")
    bare, delg = timings["backbone"], timings["bare"]
    report.add(
        _figure("model.bare_backbone_step_images_per_second",
                [s.batch_size / t for t in bare], "images/s",
                f"{s.backbone} (keras.applications, include_top=False) forward + backward + "
                f"update, loss = mean(conv5); {size}")
    )  # fmt: skip
    report.add(
        _figure("model.delg_step_images_per_second", [s.batch_size / t for t in delg],
                "images/s", f"DELG forward + ArcFace({s.num_classes}) + 3 losses + backward + "
                f"update on a constant batch (the Trainer's model and optimizer); {size}")
    )  # fmt: skip
    report.add(
        _figure("model.heads_and_losses_overhead",
                [r - 1.0 for r in _paired_ratio(delg, bare)], "fraction",
                "DELG step time / bare backbone step time - 1 (runs timed in turn)", "<=", 0.10)
    )  # fmt: skip


def _add_model_rates(report: Report, name: str, timings: dict, batch_size: int, size: str) -> None:
    """The model's forward and forward+backward+update images/s from a trainer's timings."""
    report.add(
        _figure(f"{name}.forward_images_per_second", [batch_size / t for t in timings["forward"]],
                "images/s", f"DELG model forward, inference mode, constant batch; {size}")
    )  # fmt: skip
    report.add(
        _figure(f"{name}.forward_backward_images_per_second",
                [batch_size / t for t in timings["bare"]], "images/s",
                f"bare DELG step: forward, losses, backward, update, constant batch; {size}")
    )  # fmt: skip


def run_training(s: Settings, report: Report, work_dir: str, peaks: dict, cache: dict) -> None:
    gflops = _training_gflops_per_image(s)
    loop_rates = {}
    size = f"{s.image_size} px, batch {s.batch_size}, {s.num_classes} classes"
    for dtype in ("float32", "bfloat16"):
        timings = _trainer_timings(s, work_dir, cache, dtype)
        loop, bare = timings["loop"], timings["bare"]
        name = f"training.{s.backbone}_{dtype}"
        rates = report.add(
            _figure(f"{name}.images_per_second", [s.batch_size / t for t in loop], "images/s",
                    f"Trainer loop (TFRecord pipeline, clip, schedule, checks); {size}")
        )  # fmt: skip
        loop_rates[dtype] = rates.runs
        _add_model_rates(report, name, timings, s.batch_size, size)
        report.add(
            _figure(f"{name}.loop_overhead", [r - 1.0 for r in _paired_ratio(loop, bare)],
                    "fraction", "Trainer step time / bare step time of the same model and "
                    "optimizer - 1 (runs timed in turn)", "<=", 0.10)
        )  # fmt: skip
        if dtype == "float32":
            report.add(
                _figure(f"{name}.matmul_peak_fraction",
                        [gflops * r / peaks["float32"] for r in rates.runs], "fraction",
                        f"{gflops:.1f} GFLOP/image (3x profiler forward count) x images/s / "
                        f"float32 matmul peak {peaks['float32']:.0f} GFLOP/s", ">=", 0.45)
            )  # fmt: skip
    report.add(
        _figure(f"training.{s.backbone}.bfloat16_speedup",
                _paired_ratio(loop_rates["bfloat16"], loop_rates["float32"]), "x",
                "mixed_bfloat16 / float32 training images/s", ">=", 1.0)
    )  # fmt: skip
    timings = _trainer_timings(s, work_dir, cache, "float32", demo=True)
    loop = timings["loop"]
    report.add(
        _figure("training.demo.images_per_second", [s.demo_batch_size / t for t in loop],
                "images/s", f"Trainer loop, {s.demo_backbone}, {s.demo_image_size} px, batch "
                f"{s.demo_batch_size}, {s.demo_num_classes} classes, float32")
    )  # fmt: skip
    _add_model_rates(report, "training.demo", timings, s.demo_batch_size,
                     f"{s.demo_backbone}, {s.demo_image_size} px, batch {s.demo_batch_size}, "
                     f"{s.demo_num_classes} classes, float32")  # fmt: skip


def run_extraction(s: Settings, report: Report, work_dir: str, peaks: dict) -> None:
    from delg_tf.benchmark_utils import release_memory
    from delg_tf.extraction.extraction_benchmark import (
        benchmark_extraction,
        export_untrained,
        network_gflops,
        network_seconds,
    )

    # ArcFace is not part of extraction; a small class count keeps the exports small.
    config = _model_kwargs(s.backbone, min(s.num_classes, 1000))
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
            _figure(f"{name}.images_per_second", runs, "images/s",
                    f"SavedModel extraction, {h}x{w}, scales {list(s.extraction_scales)}, "
                    f"{gflops:.0f} GFLOP/image (profiler), threshold 0 -> top 1000")
        )  # fmt: skip
        if dtype == "float32":
            report.add(
                _figure(f"{name}.matmul_peak_fraction",
                        [gflops * r / peaks["float32"] for r in runs], "fraction",
                        "network GFLOP x extraction images/s / float32 matmul peak "
                        f"{peaks['float32']:.0f} GFLOP/s (whole extraction time)", ">=", 0.60)
            )  # fmt: skip
            report.add(
                _figure(f"{name}.network_only_matmul_peak_fraction",
                        [gflops / bare / peaks["float32"]], "fraction",
                        "same with the bare network's time over the pyramid (no resize, no "
                        "selection; median of runs)")
            )  # fmt: skip
    if "float32" in rates and "bfloat16" in rates:
        report.add(
            _figure(f"extraction.{s.backbone}.bfloat16_speedup",
                    _paired_ratio(rates["bfloat16"], rates["float32"]), "x",
                    "bfloat16 / float32 extraction images/s")
        )  # fmt: skip


def add_pipeline_headroom(s: Settings, report: Report) -> None:
    """Pipeline images/s over the fastest R50 training images/s at the same size."""
    pipeline = report.get("pipeline.images_per_second")
    training = [
        report.get(f"training.{s.backbone}_{dtype}.images_per_second")
        for dtype in ("float32", "bfloat16")
    ]
    training = [t for t in training if t is not None]
    if pipeline is None or not training:
        return
    fastest = max(t.value for t in training)
    report.add(
        _figure("pipeline.headroom_over_training", [r / fastest for r in pipeline.runs], "x",
                f"input images/s / fastest {s.backbone} training images/s at {s.image_size} px",
                ">=", 5)
    )  # fmt: skip


# -------------------------------------------------------------------------------- output
def _row(f: Figure) -> str:
    met = "" if f.met is None else ("yes" if f.met else "NO")
    return f"{f.name:<58} {f.value:>12.4g} {f.unit:<10} {f.target:<8} {met}"


def print_table(report: Report) -> None:
    print()
    print(f"{'figure':<58} {'value':>12} {'unit':<10} {'target':<8} met")
    print("-" * 96)
    for figure in report.figures:
        print(_row(figure))
    for skipped in report.skipped:
        print(f"{skipped['what']:<58} {'skipped':>12}  {skipped['reason']}")


def write_json(path: str, document: dict) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(document, f, indent=2)
    os.replace(tmp, path)


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)  # TF's INFO lines would bury the figures
    unknown = [p for p in FLAGS.parts if p not in PARTS]
    if unknown:
        raise app.UsageError(f"--parts: unknown {unknown}; choose from {','.join(PARTS)}")
    settings = resolve_settings()
    if FLAGS.output_json:
        directory = os.path.dirname(os.path.abspath(FLAGS.output_json))
        if not os.path.isdir(directory):
            raise app.UsageError(f"--output_json={FLAGS.output_json}: {directory} does not exist")

    from delg_tf.benchmark_utils import machine_description

    start = time.time()
    machine = machine_description()
    load = machine["load_average_1_5_15"]
    print(f"load average before: {load}", flush=True)
    if load and machine["logical_cores"] and load[0] > 0.5 * machine["logical_cores"]:
        print(
            f"WARNING: 1-minute load {load[0]:.1f} on {machine['logical_cores']} cores: other "
            "processes share the CPU and the figures will not be the machine's.",
            flush=True,
        )
    report = Report()
    parts = [p for p in PARTS if p in FLAGS.parts]
    timings, peak_rss = {}, {}
    with tempfile.TemporaryDirectory(prefix="delg_benchmark_", dir=FLAGS.work_dir) as work_dir:
        peaks, cache = {}, {}
        for part in parts:
            part_start = time.time()
            if part in ("model", "training", "extraction") and not peaks:
                peaks = _matmul_peaks(settings, report)
            if part == "reranking":
                run_reranking(settings, report)
            elif part == "search":
                run_search(settings, report)
            elif part == "pipeline":
                run_pipeline(settings, report, work_dir)
            elif part == "model":
                run_model(settings, report, work_dir, cache)
            elif part == "training":
                run_training(settings, report, work_dir, peaks, cache)
            elif part == "extraction":
                run_extraction(settings, report, work_dir, peaks)
            timings[part] = time.time() - part_start
            # Process peak so far (KiB on Linux): shows which part set the overall peak.
            peak_rss[part] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        add_pipeline_headroom(settings, report)
    wall = time.time() - start
    print_table(report)
    try:
        load_after = list(os.getloadavg())
    except OSError:
        load_after = None
    # ru_maxrss is in KiB on Linux: the process peak, all parts included.
    max_rss_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"\nwall time {wall:.0f} s; peak RSS {max_rss_gib:.1f} GiB; load average before "
          f"{machine['load_average_1_5_15']}, after {load_after}")  # fmt: skip
    if FLAGS.output_json:
        write_json(
            FLAGS.output_json,
            {
                "command": " ".join(sys.argv),
                "started_unix": start,
                "wall_seconds": wall,
                "part_seconds": timings,
                "load_average_after": load_after,
                "max_rss_gib": max_rss_gib,
                "peak_rss_gib_after_part": peak_rss,
                "machine": machine,
                "settings": dataclasses.asdict(settings) | {"quick": FLAGS.quick},
                "parts": parts,
                "figures": [f.to_json() for f in report.figures],
                "skipped": report.skipped,
            },
        )
        print(f"wrote {FLAGS.output_json}")


def run():
    app.run(main)


if __name__ == "__main__":
    run()
