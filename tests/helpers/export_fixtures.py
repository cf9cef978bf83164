"""Shared by export/extraction tests: a tiny untrained model saved in the training layout."""

import json
import os

import tensorflow as tf

from delg_tf.models import DelgModel

TINY_CONFIG = dict(
    num_classes=3,
    backbone="resnet_tiny",
    embedding_dim=16,
    autoencoder_dim=8,
    attention_filters=8,
)


def write_training_logdir(logdir: str, seed: int = 0) -> DelgModel:
    """Builds the tiny DelgModel and writes model_config.json + checkpoints/ckpt-1."""
    tf.keras.utils.set_random_seed(seed)
    model = DelgModel(**TINY_CONFIG)
    model.build((None, None, None, 3))
    model(tf.zeros([1, 64, 64, 3]), training=False)
    os.makedirs(logdir, exist_ok=True)
    with open(os.path.join(logdir, "model_config.json"), "w") as f:
        json.dump(model.get_config(), f)
    step = tf.Variable(7, dtype=tf.int64)
    manager = tf.train.CheckpointManager(
        tf.train.Checkpoint(model=model, step=step),
        directory=os.path.join(logdir, "checkpoints"),
        max_to_keep=2,
    )
    manager.save(checkpoint_number=1)
    return model
