"""The official DELG optimizer: SGD with momentum on a linear decay to 0, fed global gradients.

The training step all-reduces the gradients and clips the *global* gradient by its norm itself
(the official code clipped each replica's partial gradient), so the optimizer must not sum over
replicas a second time.
"""

from __future__ import annotations

import keras

from delg_tf.training.config import TrainConfig
from delg_tf.training.learning_rate import LinearDecayToZero


class _SummedGradientsSGD(keras.optimizers.SGD):
    """Keras SGD that applies gradients the training step has already all-reduced.

    Keras sums the gradients over replicas inside `apply`, after its own clipping, so the clip
    would act on each replica's partial gradient. The step all-reduces and clips the global
    gradient itself; this class only stops Keras from summing a second time. The mirrored
    equivalence test fails if a Keras release changes this hook.
    """

    def _all_reduce_sum_gradients(self, grads_and_vars):
        return list(grads_and_vars)


def build_optimizer(config: TrainConfig) -> keras.optimizers.Optimizer:
    """SGD with momentum 0.9 on the linear-decay schedule (build it inside `strategy.scope()`)."""
    if not hasattr(keras.optimizers.SGD, "_all_reduce_sum_gradients"):
        raise RuntimeError(
            "This Keras release has no Optimizer._all_reduce_sum_gradients; the training step "
            "would sum gradients over replicas twice."
        )
    return _SummedGradientsSGD(
        learning_rate=LinearDecayToZero(config.initial_lr, config.max_iters),
        momentum=config.momentum,
        name="sgd",
    )
