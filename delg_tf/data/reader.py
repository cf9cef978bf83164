"""Reads DELF/DELG TFRecords into batches of model inputs.

The last stage of decode -> parse -> read:

  glob -> shard files by input pipeline -> shuffle files -> parallel interleave of TFRecord files
  (each file checked for truncation / corruption) -> [record shard] -> shuffle records (a real
  buffer: the official TFRecords are sorted by label) -> repeat -> decode, with errors caught per
  record -> parse (crop, resize, normalize) -> batch -> prefetch.

The dataset yields `(images, labels)`: float32 `[B, S, S, 3]` and int32 `[B]`, with `B` the
per-replica batch when an `InputContext` is given (for `distribute_datasets_from_function`) and
the global batch otherwise (for `experimental_distribute_dataset`).

Bad input. A TFRecord file that is truncated or has a bad checksum stops being read at the bad
record; the records before it are used and then the pipeline raises an error naming the file
(TensorFlow's own DataLossError does not name it). A file that cannot be opened at all (deleted
or unreadable after the glob) is reported the same way. A record whose Example or JPEG cannot be
decoded raises an error naming the record index, its `image/id` and the file. With
`skip_corrupt=True` both are skipped instead, printed to stderr, and counted in a `ReadStats`.
"""

from __future__ import annotations

import dataclasses
import secrets
import sys
from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf

from delg_tf.data import decoder, example_schema, parser

DEFAULT_SHUFFLE_BUFFER_SIZE = 4096
# Files read at once by the interleave: enough to mix label-sorted shards, bounded memory.
MAX_INTERLEAVE_CYCLE = 16
# Read-ahead per open file; large reads matter on network file systems (GCS).
READ_BUFFER_BYTES = 4 << 20
# TFRecord framing per record: length (8) + length CRC (4) + data CRC (4).
TFRECORD_OVERHEAD_BYTES = 16
UNPARSEABLE_ID = "<unparseable Example>"


class ReadStats:
    """Counts of corrupt input skipped by a `skip_corrupt=True` pipeline.

    Counters are `tf.Variable`s on the host CPU, incremented by the pipeline as it runs, so they
    can be read at any time (e.g. logged as a training summary). With `repeat`, a corrupt record
    is counted once per epoch. Create it outside `strategy.scope()` (a mirrored variable cannot
    be updated from an input pipeline).

    Attributes:
      corrupt_files: files whose TFRecord framing broke (truncated or bad checksum); the records
        after the break are lost and not counted in `corrupt_records`.
      corrupt_records: records that framed correctly but whose Example or JPEG did not decode.
    """

    def __init__(self):
        if tf.distribute.has_strategy():
            raise ValueError(
                "Create ReadStats outside strategy.scope(): the input pipeline updates it on the "
                "host, which a mirrored variable does not allow."
            )
        with tf.device("/device:CPU:0"):
            self.corrupt_files = tf.Variable(
                0, dtype=tf.int64, trainable=False, name="corrupt_files"
            )
            self.corrupt_records = tf.Variable(
                0, dtype=tf.int64, trainable=False, name="corrupt_records"
            )

    def result(self) -> dict[str, int]:
        """Returns the current counts as Python ints."""
        return {
            "corrupt_files": int(self.corrupt_files.numpy()),
            "corrupt_records": int(self.corrupt_records.numpy()),
        }


@dataclasses.dataclass(frozen=True)
class PipelineSeeds:
    """Seeds of one input pipeline, derived from the user seed and the pipeline id.

    Attributes:
      files: file-order shuffle seed.
      records: record shuffle buffer seed.
      elements: first half of each element's stateless `[seed, element_index]` seed.
    """

    files: int
    records: int
    elements: int


def pipeline_seeds(
    seed: int | None, input_context: tf.distribute.InputContext | None
) -> PipelineSeeds:
    """Derives independent per-pipeline seeds; a random seed is drawn when `seed` is None."""
    if seed is None:
        seed = secrets.randbits(31)
    pipeline_id = input_context.input_pipeline_id if input_context else 0
    state = np.random.SeedSequence([int(seed), pipeline_id]).generate_state(3)
    files, records, elements = (int(s) & 0x7FFFFFFF for s in state)
    return PipelineSeeds(files=files, records=records, elements=elements)


def batch_size_for(global_batch_size: int, input_context: tf.distribute.InputContext | None) -> int:
    """Per-replica batch with an `InputContext`, else the global batch."""
    if not isinstance(global_batch_size, (int, np.integer)) or global_batch_size < 1:
        raise ValueError(f"global_batch_size must be a positive int, got {global_batch_size!r}.")
    if input_context is None:
        return int(global_batch_size)
    return int(input_context.get_per_replica_batch_size(int(global_batch_size)))


def check_shuffle_buffer_size(shuffle_buffer_size: int) -> None:
    """Validates the record shuffle buffer shared by the TFRecord and TFDS pipelines."""
    if not isinstance(shuffle_buffer_size, (int, np.integer)) or shuffle_buffer_size < 1:
        raise ValueError(
            f"shuffle_buffer_size must be a positive int, got {shuffle_buffer_size!r}."
        )


def list_files(file_pattern: str | Sequence[str]) -> list[str]:
    """Expands one glob (or several) into a sorted list of files.

    Raises:
      ValueError: naming the pattern(s) when nothing matches.
    """
    patterns = [file_pattern] if isinstance(file_pattern, str) else list(file_pattern)
    files = sorted({f for pattern in patterns for f in tf.io.gfile.glob(pattern)})
    if not files:
        raise ValueError(f"No files match the file pattern {file_pattern!r}.")
    return files


def _print_if(condition: tf.Tensor, message: tf.Tensor) -> tf.Tensor:
    """Prints `message` to stderr when `condition` holds (a skipped file or record)."""

    def report():
        tf.print("delg_tf.data.reader: skipped:", message, output_stream=sys.stderr)
        return tf.constant(True)

    return tf.cond(condition, report, lambda: tf.constant(False))


def _read_file(
    filename: tf.Tensor,
    file_bytes: tf.Tensor,
    *,
    num_record_shards: int,
    record_shard_index: int,
    skip_corrupt: bool,
    stats: ReadStats | None,
) -> tf.data.Dataset:
    """Records of one file as `(record, filename, index_in_file)`, with a completeness check.

    TFRecordDataset stops a file at its first truncated or corrupt record. `ignore_errors` keeps
    the good records before it; adding up the framed sizes of what was read and comparing with
    the file size tells whether the whole file was read, and a sentinel element after the last
    record carries that check.
    """
    records = tf.data.TFRecordDataset(filename, buffer_size=READ_BUFFER_BYTES).ignore_errors()
    tagged = records.map(lambda r: (r, False))
    sentinel = tf.data.Dataset.from_tensors((tf.constant(b"", tf.string), True))

    def count(state, element):
        index, consumed = state
        record, is_end = element
        size = tf.cast(tf.strings.length(record), tf.int64) + TFRECORD_OVERHEAD_BYTES
        consumed_after = tf.where(is_end, consumed, consumed + size)
        next_state = (tf.where(is_end, index, index + 1), consumed_after)
        return next_state, (record, index, consumed_after, is_end)

    counted = tagged.concatenate(sentinel).scan(
        (tf.constant(0, tf.int64), tf.constant(0, tf.int64)), count
    )

    def check(record, index, consumed, is_end):
        broken = tf.logical_and(is_end, tf.not_equal(consumed, file_bytes))
        message = tf.strings.format(
            "TFRecord file {} is corrupt, truncated or unreadable: only its first {} records "
            "({} of {} bytes) could be read.",
            (filename, index, consumed, file_bytes),
        )
        if skip_corrupt:
            ops = [_print_if(broken, message)]
            if stats is not None:
                ops.append(stats.corrupt_files.assign_add(tf.cast(broken, tf.int64)))
        else:
            ops = [tf.debugging.Assert(tf.logical_not(broken), [message])]
        with tf.control_dependencies(ops):
            return tf.identity(record), index, is_end

    ds = counted.map(check).filter(lambda record, index, is_end: tf.logical_not(is_end))
    if num_record_shards > 1:
        # Sharding inside each file does not depend on file order or interleave determinism.
        ds = ds.filter(
            lambda record, index, is_end: tf.equal(index % num_record_shards, record_shard_index)
        )
    return ds.map(lambda record, index, is_end: (record, filename, index))


def _try_one(fn, args: tuple, fallback) -> tf.data.Dataset:
    """One-element dataset: `(fn(*args), True)`, or `(fallback, False)` if `fn` fails.

    tf.data can only catch errors with `ignore_errors`; applying it to a one-element dataset
    turns an op error (e.g. a corrupt JPEG) into a flag the pipeline can report or count.
    """
    attempt = tf.data.Dataset.from_tensors(args).map(lambda *a: (fn(*a), True)).ignore_errors()
    return attempt.concatenate(tf.data.Dataset.from_tensors((fallback, False))).take(1)


def _record_id(record: tf.Tensor) -> tf.Tensor:
    spec = {example_schema.ID: example_schema.FEATURE_SPEC[example_schema.ID]}
    return tf.io.parse_single_example(record, spec)[example_schema.ID]


def _decode_record(element_index, record, filename, index_in_file) -> tf.data.Dataset:
    fallback = {
        decoder.IMAGE: tf.zeros([1, 1, 3], tf.uint8),
        decoder.LABEL: tf.constant(example_schema.NO_LABEL, tf.int32),
        decoder.ID: tf.constant(""),
    }
    decoded = _try_one(decoder.decode, (record,), fallback)
    record_id = _try_one(_record_id, (record,), tf.constant(UNPARSEABLE_ID))
    return tf.data.Dataset.zip((decoded, record_id)).map(
        lambda d, i: (element_index, d[0], d[1], i[0], filename, index_in_file)
    )


def _check_decoded(*, skip_corrupt: bool, is_training: bool, stats: ReadStats | None):
    def check(element_index, decoded, ok, record_id, filename, index_in_file):
        message = tf.strings.format(
            "Corrupt record {} (image/id {}) in file {}: the Example or its JPEG could not be "
            "decoded.",
            (index_in_file, record_id, filename),
        )
        if skip_corrupt:
            bad = tf.logical_not(ok)
            ops = [_print_if(bad, message)]
            if stats is not None:
                ops.append(stats.corrupt_records.assign_add(tf.cast(bad, tf.int64)))
        else:
            ops = [tf.debugging.Assert(ok, [message])]
        if is_training:
            # Training records must carry a label; test records (no label) are a wrong pattern.
            has_label = tf.logical_or(tf.logical_not(ok), decoded[decoder.LABEL] >= 0)
            ops.append(
                tf.debugging.Assert(
                    has_label,
                    [
                        tf.strings.format(
                            "Record {} (image/id {}) in file {} has no image/class/label; "
                            "training needs labelled records.",
                            (index_in_file, record_id, filename),
                        )
                    ],
                )
            )
        with tf.control_dependencies(ops):
            return tf.identity(ok), element_index, decoded

    return check


def records_to_batches(
    ds: tf.data.Dataset,
    decode: Callable[[tf.data.Dataset], tf.data.Dataset],
    parse: parser.Parser,
    *,
    batch_size: int,
    repeat: bool,
    shuffle_buffer_size: int,
    seeds: PipelineSeeds,
    deterministic: bool,
    input_context: tf.distribute.InputContext | None,
) -> tf.data.Dataset:
    """The stages every pipeline shares: shuffle, repeat, number, decode, parse, batch.

    Records are numbered after shuffle and repeat, and each element's randomness is seeded by
    `[seeds.elements, element_index]`, so a pipeline's crops do not depend on map parallelism.

    Args:
      ds: dataset of still-encoded records (any structure `decode` accepts).
      decode: maps a dataset of `(int64 element_index, record)` to one of
        `(element_index, decoder.decode dict)`; it may drop elements.
      parse: the input options; `parse.is_training` also shuffles records and drops the last
        partial batch.
      batch_size: batch size of this pipeline.
      repeat: repeat forever.
      shuffle_buffer_size: record shuffle buffer (training only).
      seeds: this pipeline's seeds (`pipeline_seeds`).
      deterministic: keep element order fixed in the parallel stages.
      input_context: when set, tf.data auto-sharding is turned off (the caller shards).

    Returns:
      Dataset of `(images, labels)`: float32 `[B, S, S, 3]`, int32 `[B]`; the last partial batch
      is dropped in training so every step has the same shape.
    """
    if parse.is_training:
        ds = ds.shuffle(shuffle_buffer_size, seed=seeds.records, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = decode(ds.enumerate())

    def parse_one(element_index, decoded):
        seed = tf.stack([tf.constant(seeds.elements, tf.int64), tf.cast(element_index, tf.int64)])
        return parse(decoded, seed)

    ds = ds.map(parse_one, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    ds = ds.batch(batch_size, drop_remainder=parse.is_training).prefetch(tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.deterministic = deterministic
    if input_context is not None:
        # We shard files or records ourselves.
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return ds.with_options(options)


def build_dataset(
    file_pattern: str | Sequence[str],
    parse: parser.Parser,
    *,
    global_batch_size: int,
    input_context: tf.distribute.InputContext | None = None,
    seed: int | None = None,
    shuffle_buffer_size: int = DEFAULT_SHUFFLE_BUFFER_SIZE,
    repeat: bool | None = None,
    skip_corrupt: bool = False,
    deterministic: bool = False,
    stats: ReadStats | None = None,
) -> tf.data.Dataset:
    """Builds the training or evaluation pipeline over DELF/DELG TFRecords.

    Args:
      file_pattern: glob (or list of globs) of TFRecord files, e.g. `/data/train-*`.
      parse: the input options (`parser.Parser`: side `S`, normalization, crop, flip);
        `parse.is_training` also shuffles files and records, checks that every record has a
        label and drops the last partial batch.
      global_batch_size: batch size summed over replicas. With `input_context` the dataset is
        batched per replica (`input_context.get_per_replica_batch_size`).
      input_context: from `strategy.distribute_datasets_from_function`; shards files across
        input pipelines when there are at least as many files as pipelines, else records (each
        pipeline then reads every file and keeps every n-th record).
      seed: makes shuffles and crops reproducible (with `deterministic=True`, batches are
        identical across runs). None draws a random seed.
      shuffle_buffer_size: record shuffle buffer (training only). Records are shuffled
        serialized, so 4096 GLDv2 records take ~1 GB.
      repeat: repeat forever; defaults to `parse.is_training`.
      skip_corrupt: skip (print and count) corrupt files and records instead of raising.
      deterministic: fixed element order across parallel stages (slower).
      stats: counters of skipped input, updated when `skip_corrupt` is True.

    Returns:
      Dataset of `(images, labels)`: float32 `[B, S, S, 3]` and int32 `[B]` (-1 for unlabelled
      records, which are only accepted in evaluation).

    Raises:
      ValueError: if nothing matches `file_pattern` or an option is invalid (the message names
        it). Corrupt input raises `tf.errors.InvalidArgumentError` during iteration, naming the
        file (and record) unless `skip_corrupt` is set.
    """
    check_shuffle_buffer_size(shuffle_buffer_size)
    batch_size = batch_size_for(global_batch_size, input_context)
    files = list_files(file_pattern)
    is_training = parse.is_training
    repeat = is_training if repeat is None else repeat
    seeds = pipeline_seeds(seed, input_context)

    num_pipelines = input_context.num_input_pipelines if input_context else 1
    pipeline_id = input_context.input_pipeline_id if input_context else 0
    num_record_shards, record_shard_index = 1, 0
    if num_pipelines > 1:
        if len(files) >= num_pipelines:
            files = files[pipeline_id::num_pipelines]
        else:
            num_record_shards, record_shard_index = num_pipelines, pipeline_id
    file_bytes = [tf.io.gfile.stat(f).length for f in files]

    ds = tf.data.Dataset.from_tensor_slices(
        (tf.constant(files, tf.string), tf.constant(file_bytes, tf.int64))
    )
    if is_training:
        ds = ds.shuffle(len(files), seed=seeds.files, reshuffle_each_iteration=True)
    ds = ds.interleave(
        lambda f, n: _read_file(
            f,
            n,
            num_record_shards=num_record_shards,
            record_shard_index=record_shard_index,
            skip_corrupt=skip_corrupt,
            stats=stats,
        ),
        cycle_length=min(len(files), MAX_INTERLEAVE_CYCLE),
        block_length=1,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=deterministic,
    )

    def decode(numbered: tf.data.Dataset) -> tf.data.Dataset:
        ds = numbered.interleave(
            lambda i, element: _decode_record(i, *element),
            cycle_length=tf.data.AUTOTUNE,
            block_length=1,
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=deterministic,
        )
        ds = ds.map(_check_decoded(skip_corrupt=skip_corrupt, is_training=is_training, stats=stats))
        ds = ds.filter(lambda ok, element_index, decoded: ok)
        return ds.map(lambda ok, element_index, decoded: (element_index, decoded))

    return records_to_batches(
        ds,
        decode,
        parse,
        batch_size=batch_size,
        repeat=repeat,
        shuffle_buffer_size=shuffle_buffer_size,
        seeds=seeds,
        deterministic=deterministic,
        input_context=input_context,
    )
