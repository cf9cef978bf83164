"""delg-tf: DELG (Deep Local and Global features) for TensorFlow 2.21 / Keras 3."""

__version__ = "0.1.0"
