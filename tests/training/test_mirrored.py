"""MirroredStrategy on 2 logical CPUs trains like one device at the same global batch."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from delg_tf.training import trainer


def test_two_replicas_match_one_device(make_config, tmp_path):
    # The clip binds (gradient norms are in the hundreds), so per-replica clipping or a gradient
    # summed twice would change the update. The learning rate is small because this tiny model
    # on flat-colour images is chaotic: at lr 0.01 one-ulp weight differences grow to 1e-3 in
    # the gradient norm within two steps, on one device as on two.
    common = dict(max_iters=100, initial_lr=1e-4, clip_norm=1.0, sync_batch_norm=True)
    one = trainer.Trainer(
        make_config(logdir=str(tmp_path / "one"), **common),
        strategy=tf.distribute.OneDeviceStrategy("/cpu:0"),
    )
    two = trainer.Trainer(
        make_config(logdir=str(tmp_path / "two"), **common),
        strategy=tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]),
    )
    assert two.strategy.num_replicas_in_sync == 2 and two.per_replica_batch == 4
    for source, target in zip(one.model.weights, two.model.weights, strict=True):
        target.assign(source.numpy())
    start = [v.numpy() for v in one.model.trainable_variables]

    for _ in range(5):
        a, b = one.run_chunk(1), two.run_chunk(1)
        assert a.last["bad_labels"] == b.last["bad_labels"] == 0
        for term in ("total", "global_ce", "attention_ce", "reconstruction_mse"):
            np.testing.assert_allclose(b.last[term], a.last[term], rtol=1e-5, err_msg=term)
        np.testing.assert_allclose(b.last["grad_norm"], a.last["grad_norm"], rtol=1e-4)
        assert a.last["global_correct"] == b.last["global_correct"]
        assert a.last["grad_norm"] > 1.0  # the clip was active
    # The weights moved the same way (up to float32 rounding of w + dw).
    pairs = zip(one.model.trainable_variables, two.model.trainable_variables, strict=True)
    variables = [(x, y, w) for (x, y), w in zip(pairs, start, strict=True)]
    for x, y, w in variables:
        delta_one, delta_two = x.numpy() - w, y.numpy() - w
        scale = np.abs(delta_one).max()
        if scale > 1e-6:  # skip biases followed by BatchNorm, whose true gradient is 0
            np.testing.assert_allclose(delta_two, delta_one, atol=0.02 * scale, err_msg=x.path)
