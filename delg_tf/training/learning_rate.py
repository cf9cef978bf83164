"""The official DELG learning-rate schedule: linear decay from `initial_lr` to 0 at `max_iters`.

`lr(step) = initial_lr * (1 - step / max_iters)`, clamped at 0 past `max_iters`, with no warm-up
(`research/delf/delf/python/training/train.py`).
The official code assigns it from Python every step; here it is a
Keras schedule evaluated on the optimizer's iteration counter, so it runs inside the compiled
multi-step loop and resumes with the checkpointed optimizer.
"""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="delg_tf")
class LinearDecayToZero(keras.optimizers.schedules.LearningRateSchedule):
    """`initial_lr * max(0, 1 - step / max_iters)`.

    Args:
      initial_lr: learning rate at step 0.
      max_iters: step at which the rate reaches 0.
    """

    def __init__(self, initial_lr: float, max_iters: int):
        if max_iters <= 0:
            raise ValueError(f"max_iters must be positive, got {max_iters}.")
        self.initial_lr = float(initial_lr)
        self.max_iters = int(max_iters)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        fraction = tf.clip_by_value(1.0 - step / float(self.max_iters), 0.0, 1.0)
        return self.initial_lr * fraction

    def get_config(self) -> dict:
        return {"initial_lr": self.initial_lr, "max_iters": self.max_iters}
