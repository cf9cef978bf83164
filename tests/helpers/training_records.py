"""Tiny labelled TFRecords for the training tests, a matching small config, and their fixtures.

Each class is a flat colour plus noise, so a tiny backbone learns it within a few dozen steps.
"""

from __future__ import annotations

import csv
import os

import numpy as np
import pytest
import tensorflow as tf

from delg_tf.data import example_schema
from delg_tf.training.config import TrainConfig

NUM_CLASSES = 4
IMAGE_SIDE = 72


def write_records(directory: str, *, shards: int = 2, per_shard: int = 32, seed: int = 0) -> str:
    """Writes train-* and validation-* shards plus relabeling.csv; returns the directory."""
    rng = np.random.default_rng(seed)
    colours = np.array([[220, 40, 40], [40, 200, 40], [40, 40, 220], [220, 220, 40]])
    os.makedirs(directory, exist_ok=True)
    for split, count in (("train", shards), ("validation", 1)):
        for shard in range(count):
            path = os.path.join(directory, f"{split}-{shard:05d}-of-{count:05d}")
            with tf.io.TFRecordWriter(path) as writer:
                for i in range(per_shard):
                    label = i % NUM_CLASSES
                    noise = rng.normal(0, 30, (IMAGE_SIDE, IMAGE_SIDE, 3))
                    image = np.clip(colours[label] + noise, 0, 255).astype(np.uint8)
                    example = example_schema.make_example(
                        f"{split}{shard}_{i}",
                        tf.io.encode_jpeg(image).numpy(),
                        IMAGE_SIDE,
                        IMAGE_SIDE,
                        label=label,
                    )
                    writer.write(example.SerializeToString())
    with open(os.path.join(directory, "relabeling.csv"), "w", newline="") as f:
        rows = csv.writer(f)
        rows.writerow(["new_label", "old_label"])
        for label in range(NUM_CLASSES):
            rows.writerow([label, 1000 + label])
    return directory


@pytest.fixture(autouse=True)
def separate_collective_keys():
    """Gives each test's MirroredStrategy its own collective keys.

    Strategies over the same devices otherwise reuse group and instance keys within a process,
    and a collective traced in float64 by one test (test_losses) aborts the same key traced in
    float32 by a later one. TF's own strategy_combinations bump this base between tests too.
    """
    tf.distribute.MirroredStrategy._collective_key_base += 100_000


@pytest.fixture(scope="session")
def tiny_records(tmp_path_factory) -> str:
    return write_records(str(tmp_path_factory.mktemp("tiny_records")))


def tiny_config(records: str, logdir: str, **overrides) -> TrainConfig:
    """A resnet_tiny config at 64 px that trains in well under a second per step."""
    settings = dict(
        logdir=logdir,
        train_file_pattern=os.path.join(records, "train-*"),
        num_classes=NUM_CLASSES,
        backbone="resnet_tiny",
        image_size=64,
        batch_size=8,
        max_iters=30,
        initial_lr=0.01,
        delg_embedding_layer_dim=64,
        autoencoder_dimensions=16,
        save_interval=10,
        report_interval=5,
        eval_interval=1000,
        strategy="one_device",
        deterministic_input=True,
    )
    settings.update(overrides)
    return TrainConfig.from_flat(settings)


@pytest.fixture
def make_config(tiny_records, tmp_path):
    def make(**overrides) -> TrainConfig:
        overrides.setdefault("logdir", str(tmp_path / "logdir"))
        return tiny_config(tiny_records, **overrides)

    return make
