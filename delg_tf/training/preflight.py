"""Checks that run before training and fail with a message naming the flag and the value.

A bad flag should cost seconds, not the minutes of building a model and tracing a step:
- TFRecords and a TFDS dataset given together, or neither (`config.check_input_source`, run
  when a `TrainConfig` is made);
- a file pattern that matches nothing;
- a class count that disagrees with the dataset's `relabeling.csv`, or labels outside it in a
  sample of the training records (the step guards every label as well);
- a TFDS dataset that is unknown or not prepared (nothing is ever downloaded), a split or
  feature it lacks, or a label feature whose class count disagrees with `--num_classes`;
- an image size the backbone cannot take.
"""

from __future__ import annotations

import os
import re

import tensorflow as tf

from delg_tf.data import example_schema, reader, relabeling
from delg_tf.data.relabeling import RELABELING_FILE
from delg_tf.training.config import TrainConfig
from delg_tf.training.errors import FlagError

# Class counts of the official `--dataset_version` values (`GoogleLandmarksInfo`
# in `research/delf/delf/python/training/datasets/googlelandmarks.py`).
DATASET_NUM_CLASSES = {"gld_v1": 14951, "gld_v2": 203094, "gld_v2_clean": 81313}


def match_files(flag_name: str, pattern: str) -> list[str]:
    """The sorted files `pattern` matches (comma-separated patterns allowed).

    Raises:
      FlagError: if the pattern is empty or matches no file.
    """
    if not pattern:
        raise FlagError(f"--{flag_name} is required.")
    try:
        return reader.list_files([part.strip() for part in pattern.split(",")])
    except ValueError:
        raise FlagError(f"--{flag_name}={pattern} matches no file.") from None


def read_relabeling(path: str) -> int:
    """`relabeling.read_relabeling`, its error raised as a `FlagError` (it names the file)."""
    try:
        return relabeling.read_relabeling(path)
    except ValueError as error:
        raise FlagError(str(error)) from error


def relabeling_path(train_file_pattern: str) -> str:
    """Where `delg-build-tfrecords` puts relabeling.csv: next to the training shards."""
    first = train_file_pattern.split(",")[0].strip()
    return os.path.join(os.path.dirname(first), RELABELING_FILE)


def resolve_num_classes(
    num_classes: int | None, train_file_pattern: str, dataset_version: str | None = None
) -> int:
    """The class count: `--num_classes`, checked against relabeling.csv when one exists.

    Order: the flag if given (and it must agree with relabeling.csv if present); else
    relabeling.csv next to the training files; else the official `--dataset_version` count.

    Raises:
      FlagError: on disagreement, or when nothing gives a count.
    """
    path = relabeling_path(train_file_pattern)
    from_file = read_relabeling(path) if tf.io.gfile.exists(path) else None
    if num_classes is not None:
        if num_classes <= 0:
            raise FlagError(f"--num_classes must be positive, got {num_classes}.")
        if from_file is not None and from_file != num_classes:
            raise FlagError(f"--num_classes={num_classes} but {path} lists {from_file} classes.")
        return num_classes
    if from_file is not None:
        return from_file
    if dataset_version:
        if dataset_version not in DATASET_NUM_CLASSES:
            raise FlagError(
                f"--dataset_version={dataset_version} is not one of {sorted(DATASET_NUM_CLASSES)}."
            )
        return DATASET_NUM_CLASSES[dataset_version]
    raise FlagError(
        f"--num_classes is not set and there is no {path}; pass --num_classes or --dataset_version."
    )


def check_labels(files: list[str], num_classes: int, max_records: int = 2000) -> int:
    """Reads the labels of up to `max_records` records and checks they lie in [0, num_classes).

    Only the label feature is parsed (no JPEG decoding), so this takes well under a second.

    Returns:
      The number of records checked.

    Raises:
      FlagError: naming the file, the record index and the label.
    """
    spec = {example_schema.LABEL: example_schema.FEATURE_SPEC[example_schema.LABEL]}
    checked = 0
    per_file = max(1, max_records // len(files))
    for path in files[:max_records]:
        dataset = tf.data.TFRecordDataset(path).take(per_file)
        read = 0  # records of this file read so far: the index of a damaged one
        try:
            for index, record in enumerate(dataset):
                label = int(tf.io.parse_single_example(record, spec)[example_schema.LABEL])
                if not 0 <= label < num_classes:
                    raise FlagError(
                        f"{path} record {index} has label {label}, outside [0, --num_classes="
                        f"{num_classes}); the training files need labels (and num_classes must "
                        "match their relabeling.csv)."
                    )
                checked += 1
                read += 1
        # TF names neither the file nor the record of a torn or foreign file.
        except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as error:
            raise FlagError(
                f"{path} record {read}: not a readable TFRecord of "
                f"tf.train.Examples ({_first_line(error)}); rebuild it with delg-build-tfrecords."
            ) from None
    if not checked:
        raise FlagError(f"--train_file_pattern matches only empty files ({', '.join(files[:3])}).")
    return checked


def check_image_size(image_size: int, backbone: str, min_input_size: int) -> None:
    """Raises FlagError if `--image_size` is below what `--backbone` takes."""
    if image_size < min_input_size:
        raise FlagError(
            f"--image_size={image_size} is too small for --backbone={backbone} "
            f"(minimum {min_input_size})."
        )


def _first_line(error: BaseException) -> str:
    """The error's first line, without TF's op decorations ({{function_node ...}}, [Op:...])."""
    text = getattr(error, "message", None) or str(error)
    text = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", str(text)).strip()
    text = re.sub(r"\s*\[Op:[^\]]*\].*$", "", text.splitlines()[0] if text else "")
    return text or type(error).__name__


def _tfds_builder(name: str, data_dir: str):
    import tensorflow_datasets as tfds  # only TFDS runs pay for the import

    try:
        return tfds.builder(name, data_dir=data_dir or None)
    except (ValueError, AssertionError, OSError) as error:
        raise FlagError(
            f"--tfds_name={name}: no such TFDS dataset here or in {_tfds_where(data_dir)} "
            f"({_first_line(error)})."
        ) from None


def _tfds_where(data_dir: str) -> str:
    return f"--tfds_data_dir={data_dir}" if data_dir else "the default TFDS data dir"


def resolve_tfds_num_classes(
    num_classes: int | None, *, name: str, data_dir: str, image_key: str, label_key: str
) -> int:
    """The class count of a TFDS run, after checking the dataset has the features.

    `--num_classes` if given (it must agree with the label feature's count when that has one),
    else the label feature's `num_classes`. Reads only the dataset's metadata (no TF op, so it
    may run before a multi-worker strategy exists); `check_tfds_splits` opens the data.

    Args:
      num_classes: `--num_classes`, or None to take the label feature's.
      name: `--tfds_name`, e.g. `"mnist"` or `"cifar10:3.*.*"`.
      data_dir: `--tfds_data_dir`; empty for the TFDS default.
      image_key: `--tfds_image_key`.
      label_key: `--tfds_label_key`.

    Returns:
      The number of classes.

    Raises:
      FlagError: naming the flag (and the value) that cannot work.
    """
    features = _tfds_builder(name, data_dir).info.features
    if not label_key:
        raise FlagError("--tfds_label_key is empty; training needs the label feature's name.")
    for flag, key in (("tfds_image_key", image_key), ("tfds_label_key", label_key)):
        if key not in features:
            raise FlagError(
                f"--{flag}={key} is not a feature of --tfds_name={name}; features: "
                f"{sorted(features.keys())}."
            )
    from_builder = getattr(features[label_key], "num_classes", None)
    if num_classes is not None:
        if num_classes <= 0:
            raise FlagError(f"--num_classes must be positive, got {num_classes}.")
        if from_builder is not None and from_builder != num_classes:
            raise FlagError(
                f"--num_classes={num_classes} but --tfds_label_key={label_key} of "
                f"--tfds_name={name} has {from_builder} classes."
            )
        return num_classes
    if from_builder is None:
        raise FlagError(
            f"--tfds_label_key={label_key} of --tfds_name={name} gives no class count (it is "
            "not a ClassLabel with a known size); pass --num_classes."
        )
    return from_builder


def check_tfds_splits(name: str, data_dir: str, splits: dict[str, str]) -> None:
    """Opens each split of a TFDS dataset, which must already be prepared (never downloads).

    Args:
      name: `--tfds_name`.
      data_dir: `--tfds_data_dir`; empty for the TFDS default.
      splits: flag name -> split expression, e.g. `{"tfds_split": "train[:90%]"}`.

    Raises:
      FlagError: if the dataset is not prepared in `data_dir` (the message says how to build
        it), or a split does not exist.
    """
    builder = _tfds_builder(name, data_dir)
    for flag, split in splits.items():
        try:
            builder.as_dataset(split=split)
        except AssertionError:  # what TFDS raises for data that was never prepared
            raise FlagError(
                f"--tfds_name={name} is not prepared in {_tfds_where(data_dir)}; delg-train "
                f"never downloads. Build it first with `tfds build {name} --data_dir=<dir>` "
                "and pass --tfds_data_dir=<dir>."
            ) from None
        except (ValueError, KeyError) as error:
            raise FlagError(
                f"--{flag}={split} for --tfds_name={name}: {_first_line(error)}"
            ) from None


def tfds_splits(tfds_split: str, tfds_validation_split: str) -> dict[str, str]:
    """The TFDS splits a run reads, keyed by their flag names (no validation split if empty)."""
    splits = {"tfds_split": tfds_split}
    if tfds_validation_split:
        splits["tfds_validation_split"] = tfds_validation_split
    return splits


def input_files(config: TrainConfig) -> tuple[list[str] | None, list[str] | None]:
    """The TFRecords a run reads: (training, validation or None); (None, None) for TFDS.

    Only lists files (no TF op), so it can run before a multi-worker strategy is created.

    Raises:
      FlagError: if a file pattern matches nothing.
    """
    if config.tfds_name:
        return None, None
    train_files = match_files("train_file_pattern", config.train_file_pattern)
    validation_files = (
        match_files("validation_file_pattern", config.validation_file_pattern)
        if config.validation_file_pattern
        else None
    )
    return train_files, validation_files


def check_input(config: TrainConfig, train_files: list[str] | None) -> None:
    """The checks that read data: TFRecord labels, or the TFDS dataset, splits and class count.

    Raises:
      FlagError: naming the flag.
    """
    if not config.tfds_name:
        check_labels(train_files, config.model.num_classes)
        return
    resolve_tfds_num_classes(
        config.model.num_classes,
        name=config.tfds_name,
        data_dir=config.tfds_data_dir,
        image_key=config.tfds_image_key,
        label_key=config.tfds_label_key,
    )
    check_tfds_splits(
        config.tfds_name,
        config.tfds_data_dir,
        tfds_splits(config.tfds_split, config.tfds_validation_split),
    )
