"""Builds a tf.distribute strategy from its name, and answers who writes files.

One training loop serves every strategy; only this file knows how each is created:

- `default`: TF's default strategy (no distribution, whatever device TF picks).
- `one_device`: `OneDeviceStrategy` on `devices[0]` (default `/cpu:0`, or `/gpu:0` if a GPU
  exists).
- `mirrored`: synchronous data parallelism over the local devices (`devices`, or all GPUs, or
  the CPU).
- `multi_worker`: `MultiWorkerMirroredStrategy`; the cluster comes from `TF_CONFIG`.
  Communication is RING on CPU (NCCL needs GPUs), AUTO otherwise.
- `tpu`: `TPUStrategy` on `TPUClusterResolver(tpu=tpu)` (`tpu` is a name, a grpc:// address, or
  "" / "local" on a TPU VM). Not runnable on this project's machines; it differs from the other
  paths only here.
"""

from __future__ import annotations

import os
import tempfile

import tensorflow as tf

from delg_tf.training.config import STRATEGIES


def build_strategy(
    name: str, tpu: str = "", devices: list[str] | None = None
) -> tf.distribute.Strategy:
    """Creates the named strategy.

    Args:
      name: one of `default`, `one_device`, `mirrored`, `multi_worker`, `tpu`.
      tpu: TPU name or address for `tpu` (the `--tpu` flag).
      devices: explicit devices for `one_device` (first one used) and `mirrored`.

    Returns:
      The strategy. Create it before any model or optimizer so they are built in its scope.

    Raises:
      ValueError: for an unknown name, or `multi_worker` without a `TF_CONFIG` cluster.
    """
    if name not in STRATEGIES:
        raise ValueError(f"--strategy={name!r} is not one of {STRATEGIES}.")
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "one_device":
        if devices:
            device = devices[0]
        else:
            device = "/gpu:0" if tf.config.list_logical_devices("GPU") else "/cpu:0"
        return tf.distribute.OneDeviceStrategy(device)
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices)
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError(
                "--strategy=multi_worker needs the TF_CONFIG environment variable "
                '({"cluster": {"worker": [...]}, "task": {"type": "worker", "index": i}}).'
            )
        implementation = (
            tf.distribute.experimental.CommunicationImplementation.AUTO
            if tf.config.list_physical_devices("GPU")
            else tf.distribute.experimental.CommunicationImplementation.RING
        )
        return tf.distribute.MultiWorkerMirroredStrategy(
            communication_options=tf.distribute.experimental.CommunicationOptions(
                implementation=implementation
            )
        )
    # TPU: connect, initialise the TPU system, then build the strategy (TF's documented order).
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def task_of(strategy: tf.distribute.Strategy) -> tuple[str | None, int | None]:
    """`(task_type, task_id)` of this process, or `(None, None)` outside a cluster."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or isinstance(strategy, tf.distribute.TPUStrategy):
        return None, None
    return resolver.task_type, resolver.task_id


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes checkpoints, summaries and logs.

    True for every single-process strategy. In a multi-worker cluster the chief is the task of
    type `chief`, or worker 0 when the cluster has no chief task (TF's convention).
    """
    task_type, task_id = task_of(strategy)
    if task_type is None:
        return True
    return task_type == "chief" or (task_type == "worker" and task_id == 0)


def worker_write_dir(directory: str, strategy: tf.distribute.Strategy) -> str:
    """Where this process writes `directory`'s files.

    The chief writes to `directory`. Other workers must still run every save (a checkpoint save
    of distributed variables is collective), so they write to a private temporary directory that
    the caller deletes afterwards (`tempfile.mkdtemp`, on local disk, so workers never collide).
    This is the pattern TF documents for MultiWorkerMirroredStrategy.
    """
    if is_chief(strategy):
        return directory
    _, task_id = task_of(strategy)
    return tempfile.mkdtemp(prefix=f"delg_worker{task_id}_")
