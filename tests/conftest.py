"""Test set-up shared by every test.

Two logical CPUs are configured before TensorFlow initialises its runtime, so MirroredStrategy
tests can run two replicas on this machine (this must happen before the runtime starts, hence
at import time). Tests that want one device name `/cpu:0` explicitly.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

import tensorflow as tf  # noqa: E402

_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(_cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
