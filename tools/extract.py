"""delg-extract: DELG features of many images into a feature store, resumable.

  delg-extract --model_path=/tmp/delg-export --images_dir=photos/ --output_features_dir=feats/
  delg-extract --model_path=... --image_list=list.txt --images_dir=root/ --output_features_dir=...
  delg-extract --model_path=... --dataset_file_path=gnd_roxford5k.pkl --images_dir=oxford/jpg \
      --image_set=query --output_features_dir=roxf_query/

  delg-extract --model_path=r50delg_gldv2clean_20200914 \
      --official_config=r50delg_gldv2clean_config.pbtxt --images_dir=photos/ ...

--model_path takes our exports, official TF2 exports and Google's released TF1 models; the kind
is detected from what the SavedModel holds. Settings (scales, threshold, max features, max image
size) come from our export's settings asset, or from --official_config (an official DELG
extraction config); the flags below override either. An official model without
--official_config takes the official DELG extraction defaults and needs --attention_threshold.
Rerunning on the same --output_features_dir resumes; unreadable
images (and FIFOs, devices, symlinks leaving the image folder) are skipped and listed in the
store (and in the log). A re-run retries a failed image whose file changed since (added, replaced,
made readable); an unchanged one stays failed without being decoded again.

With --runner, the same extraction runs as an Apache Beam pipeline (pip install ".[beam]"): the
image list is split into parts of --images_per_part images, each worker extracts whole parts into
a store of parts, and any flag this binary does not define is passed to Beam:

  delg-extract --model_path=... --images_dir=photos/ --output_features_dir=feats/ \
      --runner=FnApiRunner --direct_num_workers=2 --direct_running_mode=multi_processing

Exit status: 0 every image extracted; 3 finished, but some images failed (listed); 2 usage error
(one line naming the flag or file); 1 a bug (traceback). See README "Crash safety and bad input".
"""

from __future__ import annotations

import os
import sys

from absl import flags, logging

from delg_tf.common.flags_record import write_flags_record
from delg_tf.export.export_settings import SETTINGS_FILENAME
from delg_tf.extraction.extractor import (
    ExtractionOptions,
    SavedModelExtractor,
    extract_into_store,
    settings_if_any,
)
from delg_tf.extraction.feature_store import FeatureStore, FeatureStoreError, FeatureStoreWriter
from delg_tf.extraction.image_inputs import (
    MIN_IMAGE_SIDE,
    folder_records,
    list_records,
    revisited_records,
)
from delg_tf.extraction.model_loading import is_saved_model_dir
from delg_tf.extraction.official_config import read_official_config
from delg_tf.extraction.store_record import export_identity, extraction_record
from delg_tools import cli

FLAGS = flags.FLAGS
TOOL = "delg-extract"
flags.DEFINE_string(
    "model_path",
    None,
    "SavedModel: written by delg-export, an official TF2 export, or a released TF1 DELG model "
    "(an official model needs --official_config or --attention_threshold).",
)
flags.DEFINE_string(
    "official_config",
    None,
    "Official DELG extraction config (delf_config.proto text format, e.g. "
    "r50delg_gldv2clean_config.pbtxt): scales, threshold, max features, max image size.",
)
flags.DEFINE_string("output_features_dir", None, "Feature store directory (resumed if present).")
flags.DEFINE_string("images_dir", None, "Image folder (alone: every image under it).")
flags.DEFINE_string("image_list", None, "Text file of image paths relative to --images_dir.")
flags.DEFINE_string("dataset_file_path", None, "Revisited Oxford/Paris gnd file (.pkl/.mat/.json).")
flags.DEFINE_enum("image_set", "query", ["query", "index"], "With --dataset_file_path.")
flags.DEFINE_integer("max_image_size", None, "Longest image side (default: export, 1024).")
flags.DEFINE_float("attention_threshold", None, "Override the export's attention threshold.")
flags.DEFINE_integer("max_feature_num", None, "Override the most local features per image.")
flags.DEFINE_list("image_scales", None, "Override the pyramid scales.")
flags.DEFINE_list("global_scales_ind", None, "Override the global scale indices.")
flags.DEFINE_integer("shard_size", 1000, "Images per store shard (the unit of resume).")
flags.DEFINE_integer("num_decode_threads", 2, "Parallel image decoders.")
flags.DEFINE_string(
    "runner",
    None,
    "Apache Beam runner (FnApiRunner locally; DataflowRunner, FlinkRunner, SparkRunner): extract "
    "on Beam into a store of parts. Unset: in process. Other unknown flags go to Beam.",
)
flags.DEFINE_integer("images_per_part", 1000, "With --runner: images per part (unit of work).")

BEAM_INSTALL_HINT = 'pip install "delg-tf[beam]" (from a checkout: pip install -e ".[beam]")'


def _records():
    """The images to extract; bad lists and folders are usage errors naming the flag."""
    try:
        if FLAGS.dataset_file_path:
            if not FLAGS.images_dir:
                raise cli.UsageError("--dataset_file_path needs --images_dir")
            return revisited_records(FLAGS.dataset_file_path, FLAGS.images_dir, FLAGS.image_set)
        if FLAGS.image_list:
            if not os.path.isfile(FLAGS.image_list):
                raise cli.UsageError(f"--image_list={FLAGS.image_list}: no such file")
            return list_records(FLAGS.image_list, FLAGS.images_dir)
        if FLAGS.images_dir:
            return folder_records(FLAGS.images_dir)
    except ValueError as error:  # duplicate ids, a line leaving the folder, a bad gnd file
        raise cli.UsageError(str(error)) from None
    raise cli.UsageError("give --images_dir, --image_list or --dataset_file_path")


def _options(model_path: str) -> ExtractionOptions:
    """Settings asset, then --official_config, then the flags (each overrides the one before)."""
    if not is_saved_model_dir(model_path):
        raise cli.UsageError(f"--model_path={model_path} is not a SavedModel directory")
    settings = settings_if_any(model_path)
    overrides = {}
    if FLAGS.official_config:
        try:
            overrides = read_official_config(FLAGS.official_config).options()
        except ValueError as error:
            raise cli.UsageError(f"--official_config: {error}") from None
    elif settings is None:
        logging.warning(
            "%s has no assets/%s (not written by delg-export): using the flags and the official "
            "DELG extraction defaults.",
            model_path,
            SETTINGS_FILENAME,
        )
    flag_values = {
        "attention_threshold": FLAGS.attention_threshold,
        "max_feature_num": FLAGS.max_feature_num,
        "max_image_size": FLAGS.max_image_size,
        "image_scales": [float(s) for s in FLAGS.image_scales] if FLAGS.image_scales else None,
        "global_scales_ind": [int(i) for i in FLAGS.global_scales_ind]
        if FLAGS.global_scales_ind
        else None,
    }
    overrides.update({k: v for k, v in flag_values.items() if v is not None})
    try:
        options = ExtractionOptions.from_settings(settings, **overrides)
    except ValueError as error:
        raise cli.UsageError(f"{model_path}: {error}") from None
    logging.info("Extraction settings: %s", options)
    return options


def _fail(message: str) -> None:
    raise cli.UsageError(message)


def _record(records, options: ExtractionOptions, extractor: SavedModelExtractor) -> dict:
    """What makes this run's features (kept in the store; a resume must match it)."""
    return extraction_record(
        export_identity(FLAGS.model_path),
        options,
        extractor.global_dim,
        extractor.local_dim,
        image_set=FLAGS.image_set if FLAGS.dataset_file_path else None,
        query_crop=any(r.bbox is not None for r in records),
    )


def _beam_module(pipeline_args: list[str]):
    """delg_tf.extraction.beam_extraction, or a one-line exit naming how to install Beam."""
    try:
        from delg_tf.extraction import beam_extraction
    except ImportError as error:
        _fail(f"--runner={FLAGS.runner} needs Apache Beam ({error}): {BEAM_INSTALL_HINT}")
    unknown = beam_extraction.unknown_pipeline_args(pipeline_args)
    if unknown:
        _fail(f"unknown flags (neither delg-extract's nor Beam pipeline options): {unknown}")
    return beam_extraction


def _run_on_beam(records, options, extractor, record, pipeline_args) -> int:
    beam_extraction = _beam_module(pipeline_args)
    from delg_tf.extraction.part_extraction import PartJob
    from delg_tf.extraction.store_parts import records_digest

    record = {
        **record,
        "images_per_part": FLAGS.images_per_part,
        "image_list": records_digest(records),
    }
    job = PartJob(
        output_dir=FLAGS.output_features_dir,
        record=record,
        global_dim=extractor.global_dim,
        local_dim=extractor.local_dim,
        max_image_size=options.max_image_size,
        shard_size=FLAGS.shard_size,
        num_decode_threads=FLAGS.num_decode_threads,
    )
    try:
        manifest = beam_extraction.extract_with_beam(
            records,
            FLAGS.model_path,
            options,
            job,
            FLAGS.images_per_part,
            [f"--runner={FLAGS.runner}", *pipeline_args],
            flags_text=FLAGS.flags_into_string(),
        )
    except FeatureStoreError as error:  # a refused resume (raised before the pipeline runs)
        _fail(str(error))
    logging.info(
        "%d images in %d parts, %d failed -> %s",
        manifest["num_images"],
        len(manifest["parts"]),
        manifest["num_failures"],
        FLAGS.output_features_dir,
    )
    for image_id, reason in manifest["failures"]:
        logging.warning("failed: %s: %s", image_id, reason)
    return cli.EXIT_PARTIAL if manifest["failures"] else cli.EXIT_OK


def main(argv: list[str]) -> int | None:
    if len(argv) > 1 and not FLAGS.runner:
        raise cli.UsageError(f"unexpected arguments: {argv[1:]}")
    if os.path.exists(FLAGS.output_features_dir) and not os.path.isdir(FLAGS.output_features_dir):
        raise cli.UsageError(f"--output_features_dir={FLAGS.output_features_dir} is a file")
    if FLAGS.runner:
        _beam_module(argv[1:])  # before minutes of work: Beam installed, its flags known
        if FLAGS.images_per_part < 1:
            _fail(f"--images_per_part must be >= 1, got {FLAGS.images_per_part}")
    records = _records()
    options = _options(FLAGS.model_path)
    try:
        extractor = SavedModelExtractor(FLAGS.model_path, options)
    except ValueError as error:
        raise cli.UsageError(f"--model_path: {error}") from None
    logging.info("%s: model kind %s", FLAGS.model_path, extractor.model_kind)
    record = _record(records, options, extractor)
    if FLAGS.runner:
        return _run_on_beam(records, options, extractor, record, argv[1:])
    # The writer takes the store's lock and checks its record before anything is written, so a
    # refused run (a second writer, other settings) leaves the running writer's files intact.
    try:
        writer = FeatureStoreWriter(
            FLAGS.output_features_dir,
            extractor.global_dim,
            extractor.local_dim,
            shard_size=FLAGS.shard_size,
            record=record,
        )
    except FeatureStoreError as error:
        _fail(str(error))
    with writer:
        write_flags_record(FLAGS.output_features_dir, FLAGS.flags_into_string())
        summary = extract_into_store(
            writer,
            records,
            extractor,
            max_image_size=options.max_image_size,
            num_parallel_calls=FLAGS.num_decode_threads,
        )
    logging.info(
        "%d images extracted (%.2f images/s), %d already done, %d failed (%d retried) -> %s",
        summary.extracted,
        summary.images_per_second,
        summary.skipped_done,
        len(summary.failures),
        summary.retried,
        FLAGS.output_features_dir,
    )
    for image_id, reason in summary.failures:
        logging.warning("failed: %s: %s", image_id, reason)
    # Finished with failures is not success (issue 12: all images failing exited 0), also on a
    # re-run that finds them recorded by an earlier run.
    wanted = {r.image_id for r in records}
    failed = [i for i, _ in FeatureStore(FLAGS.output_features_dir).failures if i in wanted]
    if failed:
        print(
            f"{TOOL}: {len(failed)} of {len(wanted)} images failed (e.g. {failed[0]}); they are "
            f"listed in {FLAGS.output_features_dir} and in the log above",
            file=sys.stderr,
        )
        return cli.EXIT_PARTIAL
    return cli.EXIT_OK


def _check_flags() -> None:
    cli.require_positive(
        "shard_size", "num_decode_threads", "max_feature_num", "image_scales", "images_per_part"
    )
    cli.require_non_negative("attention_threshold")
    cli.require_indices("global_scales_ind")
    cli.require_range("max_image_size", MIN_IMAGE_SIDE, 1 << 16)


def run() -> None:
    _check_flags()
    # Flags this binary does not define are kept for Beam (--direct_num_workers, --project,
    # --region, --temp_location, ...); main refuses them without --runner.
    cli.run(
        main,
        tool=TOOL,
        module=__name__,
        required=["model_path", "output_features_dir"],
        known_only=True,
    )


if __name__ == "__main__":
    run()
