import glob

import tensorflow as tf

from delg_tf.benchmark.pipeline_benchmark import benchmark_input_pipeline, write_benchmark_tfrecords
from delg_tf.data import example_schema


def test_written_records_follow_the_schema_and_the_benchmark_counts_images(tmp_path):
    pattern = write_benchmark_tfrecords(
        str(tmp_path), num_images=10, image_shape=(48, 64), num_files=3, num_classes=4
    )
    files = sorted(glob.glob(pattern))
    assert len(files) == 3
    labels, ids = [], []
    for record in tf.data.TFRecordDataset(files):
        parsed = example_schema.parse_example(record)
        image = tf.io.decode_jpeg(parsed[example_schema.ENCODED])
        assert image.shape == (48, 64, 3)
        labels.append(int(parsed[example_schema.LABEL]))
        ids.append(parsed[example_schema.ID].numpy().decode())
    assert sorted(ids) == [f"bench{i:08d}" for i in range(10)]
    assert sorted(labels) == sorted(i % 4 for i in range(10))

    result = benchmark_input_pipeline(
        pattern, image_size=32, batch_size=4, batches_per_run=2, runs=3, warmup_batches=1
    )
    assert len(result.seconds) == 3 and result.images_per_run == 8
    assert result.images_per_second_runs == [8 / s for s in result.seconds]
