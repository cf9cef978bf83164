"""train_validation_split: the official per-class split, exactly, and its singleton behaviour."""

import collections

import numpy as np
import pytest

from delg_tf.conversion.train_validation_split import shuffled_order, split_train_validation


def _official_split(image_paths, file_ids, labels, validation_split_size, seed):
    """The official build_image_dataset.py algorithm, restated with its string-array stacking."""
    labels_str = [str(label) for label in labels]
    image_attrs = np.stack((image_paths, file_ids, labels_str))
    idx_by_label = {}
    for index, label in enumerate(labels):
        idx_by_label.setdefault(label, []).append(index)
    rs = np.random.RandomState(np.random.MT19937(np.random.SeedSequence(seed)))

    def shuffle_columns(array):
        columns = np.arange(array.shape[1])
        rs.shuffle(columns)
        return array[:, columns]

    validation, train = [], []
    for indexes in idx_by_label.values():
        subset = shuffle_columns(image_attrs[:, indexes])
        cutoff = max(1, int(validation_split_size * subset.shape[1]))
        validation.append(subset[:, :cutoff])
        train.append(subset[:, cutoff:])
    validation = shuffle_columns(np.concatenate(validation, axis=1))
    train = shuffle_columns(np.concatenate(train, axis=1))
    return validation[1].tolist(), train[1].tolist()


@pytest.mark.parametrize("seed", [0, 1, 12345])
def test_matches_the_official_algorithm(seed):
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 25, size=300).tolist() + [99]  # 99 is a singleton class.
    ids = [f"id{i:04d}" for i in range(len(labels))]
    paths = [f"/x/{i}.jpg" for i in ids]
    want_validation, want_train = _official_split(paths, ids, labels, 0.2, seed)
    validation, train = split_train_validation(labels, 0.2, seed)
    assert [ids[i] for i in validation] == want_validation
    assert [ids[i] for i in train] == want_train


def test_per_class_sizes_and_singletons_only_in_validation():
    labels = [3] * 10 + [1] * 4 + [8] + [5] * 2
    validation, train = split_train_validation(labels, 0.2, seed=0)
    count_v = collections.Counter(labels[i] for i in validation)
    count_t = collections.Counter(labels[i] for i in train)
    # max(1, int(0.2 * n)): 10 -> 2, 4 -> 1, 1 -> 1, 2 -> 1.
    assert count_v == {3: 2, 1: 1, 8: 1, 5: 1}
    assert count_t == {3: 8, 1: 3, 5: 1}
    assert sorted(np.concatenate([validation, train]).tolist()) == list(range(len(labels)))


def test_singletons_to_train_moves_only_singletons_and_keeps_the_rest():
    labels = [3] * 10 + [8] + [1] * 4
    default_v, default_t = split_train_validation(labels, 0.2, seed=4)
    moved_v, moved_t = split_train_validation(labels, 0.2, seed=4, singletons_to_train=True)
    assert 10 in default_v.tolist() and 10 not in default_t.tolist()
    assert 10 in moved_t.tolist() and 10 not in moved_v.tolist()
    assert sorted(moved_v.tolist()) == sorted(i for i in default_v.tolist() if i != 10)


def test_bad_split_size_and_seeded_shuffle():
    with pytest.raises(ValueError, match="inside \\(0, 1\\)"):
        split_train_validation([1, 2], 1.0, seed=0)
    order = shuffled_order(50, seed=0)
    assert sorted(order.tolist()) == list(range(50))
    assert order.tolist() != list(range(50))
    assert order.tolist() == shuffled_order(50, seed=0).tolist()
    assert order.tolist() != shuffled_order(50, seed=1).tolist()
