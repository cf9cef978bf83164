"""Global head: GeM over conv5 then a linear whitening layer with bias."""

import numpy as np

from delg_tf.models import GeMPooling, GlobalHead
from tests.helpers.layer_harness import check_layer


def test_global_head_is_gem_then_dense_with_bias():
    rng = np.random.default_rng(0)
    conv5 = rng.uniform(0.0, 2.0, size=(2, 3, 5, 6)).astype(np.float32)
    head = GlobalHead(embedding_dim=4, gem_power=3.0)
    out = np.asarray(head(conv5))
    assert out.shape == (2, 4)
    gem = np.mean(np.maximum(conv5, 1e-6) ** 3, axis=(1, 2)) ** (1 / 3)
    kernel, bias = head.embedding.kernel.numpy(), head.embedding.bias.numpy()
    np.testing.assert_allclose(out, gem @ kernel + bias, rtol=1e-5, atol=1e-6)
    assert kernel.shape == (6, 4) and bias.shape == (4,)
    # Not L2-normalized inside the model (extraction and ArcFace normalize).
    head.embedding.kernel.assign(kernel * 10)
    assert not np.allclose(np.linalg.norm(head(conv5), axis=1), 1.0)
    assert isinstance(head.pool, GeMPooling) and head.pool.power == 3.0


def test_serialization_round_trip_and_mixed_precision():
    conv5 = np.random.default_rng(1).uniform(size=(2, 2, 2, 3)).astype(np.float32)
    check_layer(
        lambda: GlobalHead(embedding_dim=5, gem_power=2.5, gem_trainable=True, name="gh"), [conv5]
    )
