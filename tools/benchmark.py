r"""delg-benchmark: every speed figure the project promises, in one process and one run.

  delg-benchmark --output_json=benchmark.json                 # everything (~20 min, 2 cores)
  delg-benchmark --parts=reranking,search --search_sizes=100000
  delg-benchmark --quick --output_json=/tmp/b.json            # smoke run on tiny sizes

Parts (run in this order; the numpy-only parts first, so their large arrays are freed before
TensorFlow's allocator grows):
  reranking   ms/query re-ranking a 100-image shortlist of ~1000 local features each: ours
              (matmul matching + vectorised RANSAC) against the official approach (cKDTree +
              skimage RANSAC), same data, with inlier counts compared.
  training_free  ms/query of SuperGlobal re-ranking (top 400) and alpha-QE, and the one-off
              alpha-DBA seconds, on clustered synthetic 128-D and 2048-D descriptors.
  search      queries/s of exact search and faiss (IVF-Flat; HNSW up to --hnsw_max_size) on
              clustered synthetic 2048-D descriptors, recall@100 against exact, build times.
  pipeline    images/s of the training input pipeline (TFRecord JPEGs -> decode -> Inception
              crop -> resize to --image_size -> batch).
  model       bare ResNet50 (keras.applications) forward+backward step against the DELG step
              (heads, ArcFace, losses) at the same size and batch.
  training    the real training loop (Trainer) for R50 float32 and mixed_bfloat16, and for the
              demo model; its cost over the bare DELG step; fraction of the matmul peak.
  training_reference  the same-size ResNet50 step built with tf-keras (Keras 2, each step in its
              own process, TF_USE_LEGACY_KERAS=1) beside ours: Keras 3 ResNet50, with the fused
              BatchNorm, and the DELG step; training and inference images/s, ratios, peak RSS.
              Only when named in --parts; needs the benchmark extra:
              pip install --no-deps 'tf-keras==2.21.*'.
  extraction  images/s of SavedModel extraction (default 7 scales) at 1024 px, float32 and
              bfloat16; network GFLOP/s (TF profiler count) as a fraction of the matmul peak.

The float32 (and bfloat16) matmul peak (4096x4096 in a tf.function) is measured in the same run
and every figure that is judged against it uses that value. Every figure is the median of
--repeats runs; the JSON holds each run, the machine description and the resolved flags.
Figures measured while other processes load the CPU are meaningless: the load average is
recorded before and after.
"""

from __future__ import annotations

import os
import sys

from absl import app, flags, logging

from delg_tf.benchmark.demo_model import DemoModel, read_demo_model
from delg_tf.benchmark.runner import DEFAULT_PARTS, PARTS
from delg_tf.benchmark.settings import Settings, quick
from delg_tf.demo.synthetic import landmarks as synthetic_landmarks
from delg_tf.export.export_settings import DEFAULT_IMAGE_SCALES
from delg_tools import cli

_REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO_FLAGFILE = os.path.join(_REPO_DIR, "experiments", "demo_cpu.flags")

flags.DEFINE_list("parts", list(DEFAULT_PARTS), f"Parts to run, any of {','.join(PARTS)}.")
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
# The demo model is the one `make demo` trains: experiments/demo_cpu.flags and the demo preset.
flags.DEFINE_string("demo_backbone", None, "Backbone of the demo model; default: demo_cpu.flags.")
flags.DEFINE_integer(
    "demo_image_size", None, "Training crop side of the demo model; default: demo_cpu.flags."
)
flags.DEFINE_integer(
    "demo_batch_size", None, "Batch of the demo model; default: demo_cpu.flags.", lower_bound=1
)
flags.DEFINE_integer(
    "demo_num_classes",
    synthetic_landmarks.PRESETS["demo"]["num_train_landmarks"],
    "Classes of the demo model (the demo preset's training landmarks).",
    lower_bound=1,
)
flags.DEFINE_integer("pipeline_batch_size", 32, "Batch of the input-pipeline figure.")
flags.DEFINE_integer("pipeline_batches", 8, "Batches per timed input-pipeline run.")
flags.DEFINE_list("pipeline_jpeg_shape", ["600", "800"], "H,W of the benchmark JPEGs.")
# Extraction.
flags.DEFINE_list("extraction_shape", ["768", "1024"], "H,W of extraction images (1024 px).")
flags.DEFINE_list("extraction_scales", [str(s) for s in DEFAULT_IMAGE_SCALES], "Pyramid scales.")
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


def _demo_model() -> DemoModel:
    try:
        return read_demo_model(DEMO_FLAGFILE)
    except (OSError, ValueError) as e:
        raise app.UsageError(f"demo model: {e}") from e


def resolve_settings() -> Settings:
    """Settings from the flags; --quick replaces every size by a tiny one."""
    demo = _demo_model()
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
        demo_backbone=FLAGS.demo_backbone or demo.backbone,
        demo_image_size=FLAGS.demo_image_size or demo.image_size,
        demo_batch_size=FLAGS.demo_batch_size or demo.batch_size,
        demo_num_classes=FLAGS.demo_num_classes,
        demo_embedding_dim=demo.embedding_dim,
        demo_autoencoder_dim=demo.autoencoder_dim,
        pipeline_batch_size=FLAGS.pipeline_batch_size,
        pipeline_batches=FLAGS.pipeline_batches,
        pipeline_jpeg_shape=_pair(FLAGS.pipeline_jpeg_shape, "pipeline_jpeg_shape"),
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
    return quick(settings) if FLAGS.quick else settings


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)  # TF's INFO lines would bury the figures
    unknown = [p for p in FLAGS.parts if p not in PARTS]
    if unknown:
        raise app.UsageError(f"--parts: unknown {unknown}; choose from {','.join(PARTS)}")
    if "training_reference" in FLAGS.parts:
        from delg_tf.benchmark.training_reference_part import MISSING_TF_KERAS, tf_keras_installed

        if not tf_keras_installed():  # checked before any part runs, so no figure is lost
            raise app.UsageError(MISSING_TF_KERAS)
    settings = resolve_settings()
    if FLAGS.output_json:
        directory = os.path.dirname(os.path.abspath(FLAGS.output_json))
        if not os.path.isdir(directory):
            raise app.UsageError(f"--output_json={FLAGS.output_json}: {directory} does not exist")
        # Checked before the parts run (issue 12: a folder here lost every figure at the end).
        if os.path.isdir(FLAGS.output_json):
            raise app.UsageError(f"--output_json={FLAGS.output_json} is a folder; give a file")

    from delg_tf.benchmark.report import write_json
    from delg_tf.benchmark.runner import run_benchmark

    result = run_benchmark(settings, FLAGS.parts, work_dir=FLAGS.work_dir)
    if FLAGS.output_json:
        write_json(FLAGS.output_json, result.to_json(" ".join(sys.argv), quick=FLAGS.quick))
        print(f"wrote {FLAGS.output_json}")


def run():
    cli.require_positive(
        "image_size", "num_classes", "demo_image_size", "pipeline_batch_size",
        "pipeline_batches", "extraction_scales", "num_candidates", "num_local_features",
        "reference_repeats", "search_dim", "search_queries", "search_k", "faiss_nlist",
        "hnsw_max_size", "pipeline_jpeg_shape", "extraction_shape", "search_sizes",
        "faiss_nprobe", "hnsw_ef_search",
    )  # fmt: skip
    cli.require_non_negative("memory_margin_gib")
    cli.run(main, tool="delg-benchmark", module=__name__)


if __name__ == "__main__":
    run()
