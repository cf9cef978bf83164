"""delg-extract on Apache Beam: parts of the image list extracted in parallel, one store of parts.

Pipeline: Create(part names) -> Reshuffle (spread the parts over workers) -> ParDo(one part each,
the SavedModel loaded once per worker process in `DoFn.setup`) -> ToList -> the last step writes
the top-level manifest with every part's counts and failures. Beam's own TensorFlow model handler
is not used: it loads models with the Keras loader (Keras 3 refuses SavedModels there) and stacks
each batch (DELG images have different sizes).

Apache Beam is an optional dependency (`pip install ".[beam]"`); this module imports it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from delg_tf.common.atomic_files import write_gfile_text_atomically
from delg_tf.common.flags_record import FLAGS_RECORD
from delg_tf.extraction import store_parts
from delg_tf.extraction.extractor import ExtractionOptions, SavedModelExtractor
from delg_tf.extraction.part_extraction import PartJob, extract_part


class ExtractPartFn(beam.DoFn):
    """Extracts one part per element; the SavedModel is loaded once per worker process.

    Args:
      model_path: The SavedModel (a path every worker can read).
      options: Extraction options, resolved by the launcher (the same for every worker).
      job: The run's `PartJob`.
    """

    def __init__(self, model_path: str, options: ExtractionOptions, job: PartJob):
        self._model_path = model_path
        self._options = options
        self._job = job
        self._extractor = None

    def setup(self) -> None:
        # Constructed exactly as the in-process path does.
        self._extractor = SavedModelExtractor(self._model_path, self._options)

    def process(self, name: str):
        yield extract_part(self._job, name, self._extractor)


def _finish(summaries: list[dict[str, Any]], output_dir: str) -> dict[str, Any]:
    return store_parts.finish_parts_manifest(output_dir, summaries)


def run_pipeline(
    model_path: str,
    options: ExtractionOptions,
    job: PartJob,
    part_names: Sequence[str],
    pipeline_args: Sequence[str],
) -> None:
    """Runs the extraction of `part_names` and waits for it (the plan and manifest must exist).

    Args:
      model_path: The SavedModel.
      options: Resolved extraction options.
      job: The run's `PartJob`.
      part_names: Every planned part (finished ones are skipped by the workers).
      pipeline_args: Beam pipeline options, e.g. ["--runner=FnApiRunner",
        "--direct_num_workers=2", "--direct_running_mode=multi_processing"] or the Dataflow ones.
    """
    pipeline_options = PipelineOptions(list(pipeline_args))
    with beam.Pipeline(options=pipeline_options) as pipeline:
        _ = (
            pipeline
            | "Parts" >> beam.Create(list(part_names))
            | "Spread" >> beam.Reshuffle()
            | "Extract" >> beam.ParDo(ExtractPartFn(model_path, options, job))
            | "Collect" >> beam.combiners.ToList()
            | "Manifest" >> beam.Map(_finish, job.output_dir)
        )


def extract_with_beam(
    records: Sequence,
    model_path: str,
    options: ExtractionOptions,
    job: PartJob,
    images_per_part: int,
    pipeline_args: Sequence[str],
    flags_text: str | None = None,
) -> dict[str, Any]:
    """Plans the parts, checks or creates the store's record, runs the pipeline.

    Args:
      records: `ImageRecord`s in store order.
      model_path: The SavedModel (readable by every worker).
      options: Resolved extraction options.
      job: The run's `PartJob` (its record gains the part size and the image list's digest).
      images_per_part: Records per part (the unit of work and of a Beam retry).
      pipeline_args: Beam pipeline options (see `run_pipeline`).
      flags_text: The binary's resolved flags, written to flags.txt once the record is
        accepted (a refused run leaves the running store's file alone).

    Returns:
      The final top-level manifest.

    Raises:
      RecordMismatchError, FeatureStoreError: a refused resume, before anything is written.
    """
    parts = store_parts.split_into_parts(records, images_per_part)
    store_parts.open_parts_manifest(
        job.output_dir, parts, job.record, job.global_dim, job.local_dim, images_per_part
    )
    if flags_text is not None:
        write_gfile_text_atomically(store_parts.join(job.output_dir, FLAGS_RECORD), flags_text)
    store_parts.write_plan(job.output_dir, parts)
    run_pipeline(model_path, options, job, [name for name, _ in parts], pipeline_args)
    return store_parts.read_json(store_parts.join(job.output_dir, "manifest.json"))


def unknown_pipeline_args(args: Sequence[str]) -> list[str]:
    """The arguments that no Beam PipelineOptions class defines (typos, flags of other tools)."""
    import argparse

    parser = argparse.ArgumentParser(allow_abbrev=False, add_help=False)
    pending = [PipelineOptions]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        try:
            cls._add_argparse_args(parser)
        except argparse.ArgumentError:
            pass  # an option that two classes define
    _, unknown = parser.parse_known_args(list(args))
    return unknown
