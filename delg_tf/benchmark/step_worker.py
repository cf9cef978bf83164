"""One training step in its own process, timed on command: the tf-keras reference and ours.

`python -m delg_tf.benchmark.step_worker --step=STEP --image_size=S --batch_size=B
--num_classes=N` builds one model, traces its training and inference steps, prints one JSON line
`{"ready": true}` and then answers each command read from stdin with one JSON line:

- `train`: wall and CPU seconds of one training step (forward, softmax cross-entropy or the
  DELG losses, backward, SGD momentum update) on a constant batch;
- `infer`: the same for one inference-mode forward pass;
- `quit`: `{"peak_rss_gib": ...}`, the process's peak resident set, then it exits.

Steps (`STEPS`):
- `tf_keras_resnet50`: `tf_keras.applications.ResNet50(weights=None, classes=N)` (Keras 2, run
  with `TF_USE_LEGACY_KERAS=1`), `tf_keras.optimizers.SGD(momentum=0.9)`: what the official
  DELG code's framework builds (fused BatchNorm);
- `keras_resnet50`: the same network from Keras 3's `keras.applications` with this project's
  optimizer (fused SGD momentum), Keras 3 BatchNormalization;
- `keras_resnet50_fused_bn`: the same with this project's `FusedBatchNormalization`;
- `delg`: this project's DELG model (R50, ArcFace over N classes, the three losses).

`--tiny` swaps each network for a small one built from the same framework's layers (a conv, a
BatchNorm, a classifier; `resnet_tiny` for DELG), so tests run every code path in seconds.

Each worker is its own process so each step has its own peak RSS and its own framework: tf-keras
and Keras 3 cannot both be `tf.keras` in one process.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

STEPS = ("tf_keras_resnet50", "keras_resnet50", "keras_resnet50_fused_bn", "delg")


def _framework(step: str):
    if step == "tf_keras_resnet50":
        import tf_keras

        return tf_keras
    import keras

    return keras


def _classifier(k, image_size: int, num_classes: int, tiny: bool):
    """ResNet50 (or the tiny net) with a linear top: images [B, S, S, 3] -> logits [B, N]."""
    if not tiny:
        return k.applications.ResNet50(
            weights=None,
            input_shape=(image_size, image_size, 3),
            classes=num_classes,
            classifier_activation=None,
        )
    inputs = k.Input((image_size, image_size, 3))
    x = k.layers.Conv2D(8, 3, strides=2, use_bias=False, name="conv1_conv")(inputs)
    x = k.layers.BatchNormalization(epsilon=1.001e-5, name="conv1_bn")(x)
    x = k.layers.Activation("relu")(x)
    x = k.layers.GlobalAveragePooling2D()(x)
    return k.Model(inputs, k.layers.Dense(num_classes, name="predictions")(x))


def build_steps(step: str, image_size: int, batch_size: int, num_classes: int, tiny: bool):
    """The traced (train, infer) callables of `step`; each returns a scalar tensor.

    Args:
      step: one of `STEPS`.
      image_size: input side S.
      batch_size: B.
      num_classes: classifier (or ArcFace) width N.
      tiny: small networks instead of ResNet50 (tests).
    """
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    images = tf.constant(rng.uniform(-1, 1, [batch_size, image_size, image_size, 3]), tf.float32)
    labels = tf.constant(rng.integers(0, num_classes, batch_size), tf.int32)
    k = _framework(step)
    k.utils.set_random_seed(0)
    if step == "delg":
        return _delg_steps(images, labels, num_classes, tiny)
    model = _classifier(k, image_size, num_classes, tiny)
    if step == "keras_resnet50_fused_bn":
        from delg_tf.models.fused_batch_norm import with_fused_batch_norm

        model = with_fused_batch_norm(model)
    variables = model.trainable_variables
    if step == "tf_keras_resnet50":
        optimizer = k.optimizers.SGD(0.01, momentum=0.9)

        def apply(grads):
            optimizer.apply_gradients(zip(grads, variables, strict=True))

    else:
        from delg_tf.training.optimizer import sgd_momentum

        optimizer = sgd_momentum(0.01, momentum=0.9)
        optimizer.build(variables)

        def apply(grads):
            optimizer.apply(grads, variables)

    @tf.function
    def train():
        with tf.GradientTape() as tape:
            logits = model(images, training=True)
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels, tf.cast(logits, tf.float32))
            )
        apply(tape.gradient(loss, variables))
        return loss

    @tf.function
    def infer():
        return tf.reduce_sum(model(images, training=False))

    return train, infer


def _delg_steps(images, labels, num_classes: int, tiny: bool):
    import tensorflow as tf

    from delg_tf.export.checkpoint_loading import build_model
    from delg_tf.training.optimizer import sgd_momentum
    from delg_tf.training.train_step import forward_backward

    config = {"num_classes": num_classes, "backbone": "resnet_tiny" if tiny else "resnet50"}
    if tiny:
        config.update(embedding_dim=32, autoencoder_dim=8, attention_filters=16)
    model = build_model(config)
    optimizer = sgd_momentum(0.01, momentum=0.9)
    optimizer.build(model.trainable_variables)
    batch_size = int(images.shape[0])

    @tf.function
    def train():
        losses, grads, *_ = forward_backward(model, images, labels, batch_size)
        pairs = [
            (g, v) for g, v in zip(grads, model.trainable_variables, strict=True) if g is not None
        ]
        optimizer.apply([g for g, _ in pairs], [v for _, v in pairs])
        return losses["total"]

    @tf.function
    def infer():
        outputs = model(images, training=False)
        return tf.add_n([tf.reduce_sum(tf.cast(v, tf.float32)) for v in outputs.values()])

    return train, infer


def _say(**message) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--step", choices=STEPS, required=True)
    parser.add_argument("--image_size", type=int, required=True)
    parser.add_argument("--batch_size", type=int, required=True)
    parser.add_argument("--num_classes", type=int, required=True)
    parser.add_argument("--tiny", action="store_true")
    args = parser.parse_args(argv)
    if args.step == "tf_keras_resnet50" and os.environ.get("TF_USE_LEGACY_KERAS") != "1":
        parser.error("--step=tf_keras_resnet50 needs TF_USE_LEGACY_KERAS=1 in the environment")
    train, infer = build_steps(
        args.step, args.image_size, args.batch_size, args.num_classes, args.tiny
    )
    for fn in (train, infer):  # trace and warm up: the first calls are not timed
        fn().numpy()
    _say(ready=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "quit":
            break
        if command not in ("train", "infer"):
            _say(error=f"unknown command {command!r}")
            return 2
        fn = train if command == "train" else infer
        start, cpu_start = time.perf_counter(), time.process_time()
        value = float(fn().numpy())
        # CPU seconds of all the worker's threads: the work done, less sensitive than wall time
        # to other processes sharing the cores.
        _say(
            seconds=time.perf_counter() - start,
            cpu_seconds=time.process_time() - cpu_start,
            value=value,
        )
    # ru_maxrss is in KiB on Linux.
    _say(peak_rss_gib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
