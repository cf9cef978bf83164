"""Plans which image goes to which split, in which order, before any image is read.

- GLDv2 ids from the CSVs are located on disk (`image_paths.find_gldv2_image`); missing files and
  unsafe ids become bad inputs here, so the split is made on the images that exist.
- Labelled images are split per class exactly as the official tool does
  (`train_validation_split`), whose final shuffles already mix classes across the split; without
  a validation split the train list is shuffled with the same seeded generator. The official tool
  writes that case grouped by label, which its 100-element shuffle buffer cannot undo.
- Test images keep the order of test.csv.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Sequence

from delg_tf.conversion.bad_inputs import BadInput
from delg_tf.conversion.image_paths import find_gldv2_image
from delg_tf.conversion.tfrecord_conversion import ConversionItem
from delg_tf.conversion.train_validation_split import shuffled_order, split_train_validation


@dataclasses.dataclass(frozen=True)
class LocatedImages:
    """Images found on disk, aligned lists, plus the ids that were not."""

    ids: list[str]
    paths: list[str]
    labels: list[int] | None
    bad_inputs: list[BadInput]


def locate_gldv2_images(
    ids: Sequence[str], labels: Sequence[int] | None, image_root: str
) -> LocatedImages:
    """Finds each id's file under `image_root` (GLDv2 `a/b/c/<id>.jpg` layout or flat).

    Args:
      ids: image ids from a CSV.
      labels: label per id, or None for test ids.
      image_root: the image directory (glob prefix already removed).

    Returns:
      LocatedImages; ids whose file is missing, not regular, or outside the root are bad inputs.
    """
    found = LocatedImages([], [], [] if labels is not None else None, [])
    for index, image_id in enumerate(ids):
        path, problem = find_gldv2_image(image_root, image_id)
        if problem:
            found.bad_inputs.append(BadInput(image_id, path or "", problem))
            continue
        found.ids.append(image_id)
        found.paths.append(path)
        if labels is not None:
            found.labels.append(labels[index])
    return found


def plan_labelled_splits(
    ids: Sequence[str],
    paths: Sequence[str],
    labels: Sequence[int],
    generate_train_validation_splits: bool,
    validation_split_size: float,
    seed: int,
    singletons_to_train: bool = False,
) -> tuple[dict[str, list[ConversionItem]], dict[str, int]]:
    """Orders labelled images into "validation" and "train" (or "train" only) splits.

    Args:
      ids, paths, labels: aligned lists of the images to convert (labels already relabelled).
      generate_train_validation_splits: make a per-class validation split.
      validation_split_size: fraction of each class sent to validation, in (0, 1).
      seed: the official `--seed`.
      singletons_to_train: send one-image classes to train instead of validation.

    Returns:
      (splits, stats): stats counts `classes_with_images` and `classes_only_in_validation`
      (classes with no training image, i.e. one-image classes by default).
    """
    items = [
        ConversionItem(i, p, int(label)) for i, p, label in zip(ids, paths, labels, strict=True)
    ]
    counts = collections.Counter(labels)
    stats = {"classes_with_images": len(counts), "classes_only_in_validation": 0}
    if generate_train_validation_splits:
        validation, train = split_train_validation(
            labels, validation_split_size, seed, singletons_to_train
        )
        train_labels = {labels[i] for i in train}
        stats["classes_only_in_validation"] = len(set(counts) - train_labels)
        return {
            "validation": [items[i] for i in validation],
            "train": [items[i] for i in train],
        }, stats
    return {"train": [items[i] for i in shuffled_order(len(items), seed)]}, stats


def plan_test_split(ids: Sequence[str], paths: Sequence[str]) -> list[ConversionItem]:
    """Test items, unlabelled, in CSV order."""
    return [ConversionItem(i, p, None) for i, p in zip(ids, paths, strict=True)]
