"""Tests for delg_tf.data.reader on TFRecords written here with real JPEGs."""

import numpy as np
import pytest
import tensorflow as tf

from delg_tf.data import example_schema, parser, reader

SIZE = 24


def _jpeg(rng, height=30, width=40):
    return tf.io.encode_jpeg(rng.integers(0, 256, [height, width, 3], dtype=np.uint8)).numpy()


def _write(path, labels, *, corrupt_jpeg_labels=(), unlabelled=False, seed=0):
    """Writes one record per label (id f"img{label}"); listed labels get truncated JPEG bytes."""
    rng = np.random.default_rng(seed)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for label in labels:
            encoded = _jpeg(rng)
            if label in corrupt_jpeg_labels:
                encoded = encoded[:40]
            example = example_schema.make_example(
                f"img{label}", encoded, 30, 40, label=None if unlabelled else label
            )
            writer.write(example.SerializeToString())
    return str(path)


def _shards(tmp_path, num_files, per_file):
    return [
        _write(tmp_path / f"train-{k:05d}", range(k * per_file, (k + 1) * per_file), seed=k)
        for k in range(num_files)
    ]


def _labels(ds):
    return np.concatenate([labels.numpy() for _, labels in ds])


def _eval(pattern, normalization="delf", **kwargs):
    parse = parser.Parser(image_size=SIZE, normalization=normalization, is_training=False)
    options = dict(global_batch_size=4)
    options.update(kwargs)
    return reader.build_dataset(pattern, parse, **options)


def test_evaluation_yields_every_record_once_with_shapes_and_dtypes(tmp_path):
    _shards(tmp_path, num_files=3, per_file=5)
    ds = _eval(str(tmp_path / "train-*"))
    batches = list(ds)
    assert [int(images.shape[0]) for images, _ in batches] == [4, 4, 4, 3]  # partial batch kept
    images, labels = batches[0]
    assert images.shape == (4, SIZE, SIZE, 3) and images.dtype == tf.float32
    assert labels.dtype == tf.int32
    assert -1.0 <= images.numpy().min() and images.numpy().max() <= 1.0
    assert sorted(_labels(batches)) == list(range(15))


def test_training_batches_are_full_shuffled_and_repeat(tmp_path):
    _shards(tmp_path, num_files=2, per_file=20)
    ds = reader.build_dataset(
        str(tmp_path / "train-*"),
        parser.Parser(is_training=True, image_size=SIZE, normalization="caffe"),
        global_batch_size=8,
        seed=3,
    )
    labels = []
    for images, batch_labels in ds.take(10):  # 80 > 40 records: repeats
        assert images.shape == (8, SIZE, SIZE, 3) and images.dtype == tf.float32
        labels.extend(batch_labels.numpy())
    assert sorted(labels[:40]) == list(range(40))  # one full epoch first
    # Records are label-sorted on disk; a real shuffle buffer breaks that order.
    assert abs(np.corrcoef(np.arange(40), labels[:40])[0, 1]) < 0.5


def test_epoch_without_repeat_drops_only_the_remainder(tmp_path):
    _shards(tmp_path, num_files=2, per_file=5)
    ds = reader.build_dataset(
        str(tmp_path / "train-*"),
        parser.Parser(is_training=True, image_size=SIZE, normalization="delf"),
        global_batch_size=4,
        repeat=False,
        seed=0,
    )
    assert [int(labels.shape[0]) for _, labels in ds] == [4, 4]


def test_pattern_matching_nothing_names_the_pattern(tmp_path):
    pattern = str(tmp_path / "nothing-*")
    with pytest.raises(ValueError, match="nothing-"):
        _eval(pattern)


def test_bad_options_are_named(tmp_path):
    pattern = _shards(tmp_path, 1, 2)[0]
    with pytest.raises(ValueError, match="normalization.*'imagenet'"):
        _eval(pattern, normalization="imagenet")
    with pytest.raises(ValueError, match="global_batch_size.*0"):
        _eval(pattern, global_batch_size=0)


@pytest.mark.parametrize("num_files", [4, 1])  # file sharding, then record sharding
def test_two_input_pipelines_cover_all_records_disjointly(tmp_path, num_files):
    _shards(tmp_path, num_files=num_files, per_file=12 // num_files)
    seen = []
    for pipeline_id in range(2):
        context = tf.distribute.InputContext(
            num_input_pipelines=2, input_pipeline_id=pipeline_id, num_replicas_in_sync=2
        )
        ds = _eval(str(tmp_path / "train-*"), input_context=context)
        seen.append(set(_labels(ds).tolist()))
        assert all(int(labels.shape[0]) <= 2 for _, labels in ds)  # per-replica batch 4 / 2
    assert seen[0].isdisjoint(seen[1])
    assert seen[0] | seen[1] == set(range(12))
    assert len(seen[0]) == len(seen[1]) == 6


def _train_batches(pattern, seed, steps=3):
    ds = reader.build_dataset(
        pattern,
        parser.Parser(is_training=True, image_size=SIZE, normalization="delf", random_flip=True),
        global_batch_size=4,
        seed=seed,
        deterministic=True,
    )
    return [(images.numpy(), labels.numpy()) for images, labels in ds.take(steps)]


def test_seeded_deterministic_pipeline_repeats_exactly(tmp_path):
    _shards(tmp_path, num_files=3, per_file=6)
    pattern = str(tmp_path / "train-*")
    first, second, other = (_train_batches(pattern, s) for s in (11, 11, 12))
    for (images_a, labels_a), (images_b, labels_b) in zip(first, second, strict=True):
        np.testing.assert_array_equal(labels_a, labels_b)
        np.testing.assert_array_equal(images_a, images_b)
    assert not all(np.array_equal(a[0], b[0]) for a, b in zip(first, other, strict=True))


def test_truncated_file_raises_naming_the_file(tmp_path):
    good = _write(tmp_path / "data-00000", range(4))
    data = open(good, "rb").read()
    truncated = tmp_path / "data-00001"
    truncated.write_bytes(data[: len(data) - 50])
    with pytest.raises(tf.errors.InvalidArgumentError, match="data-00001"):
        _labels(_eval(str(tmp_path / "data-*")))


def test_garbled_record_raises_naming_the_file(tmp_path):
    path = _write(tmp_path / "data-00000", range(4))
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0xFF  # breaks a record's data checksum
    (tmp_path / "data-00000").write_bytes(bytes(data))
    with pytest.raises(tf.errors.InvalidArgumentError, match="data-00000.* is corrupt, truncated"):
        _labels(_eval(str(tmp_path / "data-*")))


def test_corrupt_jpeg_raises_naming_record_id_and_file(tmp_path):
    _write(tmp_path / "data-00000", range(5), corrupt_jpeg_labels={3})
    with pytest.raises(tf.errors.InvalidArgumentError, match="img3.*data-00000"):
        _labels(_eval(str(tmp_path / "data-*")))


def test_skip_corrupt_skips_and_counts(tmp_path):
    _write(tmp_path / "data-00000", range(5), corrupt_jpeg_labels={1, 3})
    full = _write(tmp_path / "data-00001", range(10, 14))
    data = open(full, "rb").read()
    (tmp_path / "data-00001").write_bytes(data[: len(data) - 50])  # loses the last record
    (tmp_path / "data-00002").write_bytes(b"\x00" * 7)  # not a TFRecord at all
    stats = reader.ReadStats()
    labels = _labels(_eval(str(tmp_path / "data-*"), skip_corrupt=True, stats=stats))
    assert sorted(labels) == [0, 2, 4, 10, 11, 12]
    assert stats.result() == {"corrupt_files": 2, "corrupt_records": 2}


def test_unlabelled_records_are_refused_in_training_only(tmp_path):
    _write(tmp_path / "test-00000", range(3), unlabelled=True)
    pattern = str(tmp_path / "test-*")
    np.testing.assert_array_equal(_labels(_eval(pattern)), [-1, -1, -1])
    ds = reader.build_dataset(
        pattern,
        parser.Parser(is_training=True, image_size=SIZE, normalization="delf"),
        global_batch_size=2,
    )
    with pytest.raises(tf.errors.InvalidArgumentError, match="no image/class/label"):
        next(iter(ds))


def test_read_stats_refuses_a_strategy_scope():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope(), pytest.raises(ValueError, match="outside strategy.scope"):
        reader.ReadStats()


def test_distribute_datasets_from_function_on_two_replicas(tmp_path):
    _shards(tmp_path, num_files=2, per_file=4)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    stats = reader.ReadStats()

    def dataset_fn(context):
        return reader.build_dataset(
            str(tmp_path / "train-*"),
            parser.Parser(is_training=True, image_size=SIZE, normalization="delf"),
            global_batch_size=4,
            input_context=context,
            seed=0,
            skip_corrupt=True,
            stats=stats,
        )

    dist = strategy.distribute_datasets_from_function(dataset_fn)
    images, labels = next(iter(dist))
    per_replica = strategy.experimental_local_results(images)
    assert [tuple(x.shape) for x in per_replica] == [(2, SIZE, SIZE, 3)] * 2
    assert all(x.dtype == tf.int32 for x in strategy.experimental_local_results(labels))
    assert stats.result() == {"corrupt_files": 0, "corrupt_records": 0}
