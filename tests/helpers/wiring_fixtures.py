"""A seeded tiny DelgModel whose weights do not depend on Keras initialisers or build order.

Used to store known answers of the forward pass (tests/models/data/pre_2021_wiring.npz was
written by `write_known_answer` from the code as it was before the attention wiring changed,
commit f84437f) and to compare them after the change.
"""

from __future__ import annotations

import zlib

import numpy as np

from delg_tf.models import DelgModel

MODEL_KWARGS = dict(
    num_classes=3,
    backbone="resnet_tiny",
    embedding_dim=32,
    autoencoder_dim=16,
    attention_filters=8,
)
IMAGE_SHAPE = (1, 96, 128, 3)
OUTPUT_KEYS = (
    "global_descriptor",
    "attention",
    "attention_logits",
    "local_descriptors",
    "reconstruction",
)


def set_seeded_weights(model: DelgModel) -> None:
    """Overwrites every variable with values drawn from a RandomState seeded by its path.

    Kernels: uniform(+-sqrt(3 / fan_in)); biases, BN beta and moving mean: uniform(+-0.1);
    BN gamma: 1 + uniform(+-0.1); moving variance: 1 + uniform(0, 0.5). Other variables (GeM p,
    ArcFace scale) keep their constant initial values.
    """
    for variable in model.variables:
        rng = np.random.RandomState(zlib.crc32(variable.path.encode()))
        shape = tuple(variable.shape)
        name = variable.path.rsplit("/", 1)[-1]
        if name == "kernel" or (len(shape) >= 2 and variable.trainable):
            fan_in = int(np.prod(shape[:-1]))
            value = rng.uniform(-1, 1, shape) * np.sqrt(3.0 / fan_in)
        elif name in ("bias", "beta", "moving_mean"):
            value = rng.uniform(-0.1, 0.1, shape)
        elif name == "gamma":
            value = 1.0 + rng.uniform(-0.1, 0.1, shape)
        elif name == "moving_variance":
            value = 1.0 + rng.uniform(0.0, 0.5, shape)
        else:
            continue
        variable.assign(value.astype(np.float32))


def seeded_images() -> np.ndarray:
    """[1, 96, 128, 3] float32 normalised-looking input."""
    return np.random.RandomState(7).uniform(-1, 1, IMAGE_SHAPE).astype(np.float32)


def build_seeded_model(**overrides) -> DelgModel:
    model = DelgModel(**{**MODEL_KWARGS, **overrides})
    model.build((None, None, None, 3))
    set_seeded_weights(model)
    return model


def forward(model: DelgModel) -> dict[str, np.ndarray]:
    out = model(seeded_images(), training=False)
    return {key: out[key].numpy() for key in OUTPUT_KEYS if key in out}


def write_known_answer(path: str, **overrides) -> None:
    np.savez(path, **forward(build_seeded_model(**overrides)))
