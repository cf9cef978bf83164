"""The per-class train/validation split of the official build_image_dataset.py, and the shuffle.

Official algorithm (reproduced exactly, so the same seed gives the same split):
  rs = RandomState(MT19937(SeedSequence(seed)))
  for each label, in order of first appearance:
      shuffle that label's images with rs; the first max(1, int(validation_split_size * n)) go to
      validation, the rest to train
  then shuffle the concatenated validation list with rs, then the train list.
Consequence kept by default: a class with one image goes to validation only (it has no training
image). `singletons_to_train=True` sends such images to train instead (not the official
behaviour, and it does not change the random stream: shuffling one element draws nothing).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def official_random_state(seed: int) -> np.random.RandomState:
    """The generator the official tool uses for the split."""
    return np.random.RandomState(np.random.MT19937(np.random.SeedSequence(seed)))


def _shuffled(indices: np.ndarray, rs: np.random.RandomState) -> np.ndarray:
    # The official `_shuffle_by_columns`: shuffle arange(n), then gather.
    order = np.arange(indices.shape[0])
    rs.shuffle(order)
    return indices[order]


def split_train_validation(
    labels: Sequence[int],
    validation_split_size: float,
    seed: int,
    singletons_to_train: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Splits image indices per class into validation and train, both shuffled.

    Args:
      labels: `[N]` label of each image.
      validation_split_size: fraction of each class sent to validation, in (0, 1).
      seed: the official `--seed`.
      singletons_to_train: put one-image classes in train instead of validation.

    Returns:
      (validation_indices `[V]`, train_indices `[N - V]`), int64 indices into `labels`.

    Raises:
      ValueError: validation_split_size outside (0, 1).
    """
    if not 0.0 < validation_split_size < 1.0:
        raise ValueError(
            f"validation_split_size must be inside (0, 1), got {validation_split_size}"
        )
    by_label: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        by_label.setdefault(label, []).append(index)
    rs = official_random_state(seed)
    validation, train = [], []
    for indices in by_label.values():
        shuffled = _shuffled(np.asarray(indices, dtype=np.int64), rs)
        n = shuffled.shape[0]
        cutoff = 0 if (n == 1 and singletons_to_train) else max(1, int(validation_split_size * n))
        validation.append(shuffled[:cutoff])
        train.append(shuffled[cutoff:])
    empty = np.zeros([0], dtype=np.int64)
    validation_indices = _shuffled(np.concatenate(validation) if validation else empty, rs)
    train_indices = _shuffled(np.concatenate(train) if train else empty, rs)
    return validation_indices, train_indices


def shuffled_order(n: int, seed: int) -> np.ndarray:
    """`[n]` permutation used to shuffle a split that is not split further (no --generate_...)."""
    return _shuffled(np.arange(n, dtype=np.int64), official_random_state(seed))
