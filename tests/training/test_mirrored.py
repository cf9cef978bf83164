"""MirroredStrategy on 2 logical CPUs trains like one device at the same global batch."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from delg_tf.training import trainer


def _state(t: trainer.Trainer) -> list:
    return [*t.model.weights, *t.optimizer.variables]


def test_two_replicas_match_one_device(make_config, tmp_path):
    # The clip binds (gradient norms are in the hundreds), so per-replica clipping or a gradient
    # summed twice would change the update.
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
    assert len(_state(one)) == len(_state(two))

    for step in range(5):
        # Both runs stay together (weights, momentum, step counter)...
        for x, y in zip(_state(one), _state(two), strict=True):
            np.testing.assert_allclose(y.numpy(), x.numpy(), atol=1e-5, err_msg=x.path)
        # ...but each step starts from one's exact state: the tiny model's gradient jumps at
        # kinks (on one device, a random 1-ulp weight perturbation flips step 3's gradient norm
        # between 542.80 and 542.00), so the one-ulp differences from the replicas' summation
        # order can move a later step's norm by 1e-3. From equal states it agrees to ~1e-6.
        for x, y in zip(_state(one), _state(two), strict=True):
            y.assign(x.numpy())
        start = [v.numpy() for v in one.model.trainable_variables]
        a, b = one.run_chunk(1), two.run_chunk(1)
        assert a.last["bad_labels"] == b.last["bad_labels"] == 0
        for term in ("total", "global_ce", "attention_ce", "reconstruction_mse", "grad_norm"):
            np.testing.assert_allclose(b.last[term], a.last[term], rtol=1e-5, err_msg=term)
        assert a.last["global_correct"] == b.last["global_correct"]
        assert a.last["grad_norm"] > 1.0, step  # the clip was active
        # The weights moved the same way (up to float32 rounding of w + dw).
        pairs = zip(one.model.trainable_variables, two.model.trainable_variables, strict=True)
        for (x, y), w in zip(pairs, start, strict=True):
            delta_one, delta_two = x.numpy() - w, y.numpy() - w
            scale = np.abs(delta_one).max()
            if scale > 1e-6:  # skip biases followed by BatchNorm, whose true gradient is 0
                np.testing.assert_allclose(delta_two, delta_one, atol=0.02 * scale, err_msg=x.path)
    assert one.current_step == two.current_step == 5
