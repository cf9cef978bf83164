"""DELG training losses, normalized by the global batch size.

total = CE(ArcFace logits) + attention_loss_weight * CE(attention logits)
        + reconstruction_loss_weight * MSE(S', S)

Every term is a sum over the replica's examples divided by the *global* batch size, so summing
the per-replica losses (and gradients, as MirroredStrategy does) gives the same value for any
number of replicas. The official code averages the reconstruction term per replica instead,
which multiplies its weight by the replica count; this module does not.
"""

from __future__ import annotations

import tensorflow as tf

from delg_tf.models.precision import at_least_float32


def _per_example_cross_entropy(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    return tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(labels, tf.int32), logits=at_least_float32(logits)
    )


def _per_example_mse(prediction: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """[B, h, w, C] x2 -> [B]: mean squared error over space and channels per example."""
    prediction = at_least_float32(prediction)
    error = tf.square(prediction - tf.cast(at_least_float32(target), prediction.dtype))
    return tf.reduce_mean(error, axis=[1, 2, 3])


def _sum_over_batch(per_example: tf.Tensor, global_batch_size: int | tf.Tensor) -> tf.Tensor:
    return tf.reduce_sum(per_example) / tf.cast(global_batch_size, per_example.dtype)


def delg_losses(
    outputs: dict[str, tf.Tensor],
    global_logits: tf.Tensor,
    labels: tf.Tensor,
    global_batch_size: int | tf.Tensor,
    attention_loss_weight: float = 1.0,
    reconstruction_loss_weight: float = 10.0,
) -> dict[str, tf.Tensor]:
    """Computes the DELG loss terms for one replica's share of a batch.

    Args:
        outputs: `DelgModel` outputs; uses `attention_logits` [B, N] and, when present,
            `reconstruction` and `local_features` [B, h, w, C] (S' and its target S).
        global_logits: [B, N] ArcFace logits (with the margin, at training).
        labels: [B] integer class ids.
        global_batch_size: Examples in the global batch (all replicas).
        attention_loss_weight: Weight of the attention cross-entropy (1.0 officially).
        reconstruction_loss_weight: Weight of the reconstruction MSE (10.0 officially).

    Returns:
        Dict of float32 scalars (float64 for float64 inputs): `total`, `global_ce`,
        `attention_ce`, `reconstruction_mse` (unweighted terms, each divided by the global
        batch size).
    """
    global_ce = _sum_over_batch(
        _per_example_cross_entropy(labels, global_logits), global_batch_size
    )
    attention_ce = _sum_over_batch(
        _per_example_cross_entropy(labels, outputs["attention_logits"]), global_batch_size
    )
    if "reconstruction" in outputs:
        # The target is S itself; DelgModel already stops its gradient.
        target = tf.stop_gradient(outputs["local_features"])
        mse = _per_example_mse(outputs["reconstruction"], target)
        reconstruction_mse = _sum_over_batch(mse, global_batch_size)
    else:
        reconstruction_mse = tf.zeros([], global_ce.dtype)
    total = (
        global_ce
        + attention_loss_weight * attention_ce
        + reconstruction_loss_weight * reconstruction_mse
    )
    return {
        "total": total,
        "global_ce": global_ce,
        "attention_ce": attention_ce,
        "reconstruction_mse": reconstruction_mse,
    }
