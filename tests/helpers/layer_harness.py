"""The checks every custom layer gets: serialization round trip and a mixed-precision run.

In the spirit of keras-hub's `TestCase.run_layer_test`: a layer test calls `check_layer` with a
factory and inputs, and gets, on top of its own known answers,
- `keras.layers.serialize` -> `deserialize` gives the same config and, with the same weights,
  the same outputs (the registration and `get_config` are complete);
- the same layer built under `mixed_bfloat16` computes in the expected dtype (bfloat16 unless
  the layer keeps float32 on purpose), keeps float32 variables, and
  with the float32 weights gives finite outputs close to the float32 ones.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import keras
import numpy as np

# bfloat16 keeps 8 bits of mantissa (~0.4% relative); a few chained ops stay within 5%.
BF16_RTOL = 5e-2


def _outputs(layer: keras.layers.Layer, inputs: Sequence[Any], call_kwargs: Mapping) -> list:
    return [np.asarray(x, np.float32) for x in keras.tree.flatten(layer(*inputs, **call_kwargs))]


def check_layer(
    make_layer: Callable[[], keras.layers.Layer],
    inputs: Sequence[Any],
    call_kwargs: Mapping[str, Any] | None = None,
    atol: float = 1e-6,
    mixed_compute_dtype: str = "bfloat16",
) -> keras.layers.Layer:
    """Runs the round trip and the mixed-precision checks; returns the float32 layer.

    Args:
      make_layer: builds a fresh layer (called once per dtype policy).
      inputs: positional call inputs (numpy arrays, e.g. `[B, H, W, C]` feature maps).
      call_kwargs: keyword call arguments (`training=`, `labels=`...).
      atol: tolerance of the round trip (the same weights should give the same numbers).
      mixed_compute_dtype: the compute dtype expected under `mixed_bfloat16`; "float32" for the
        layers that keep the head in float32 on purpose (GeM's power, ArcFace's cosines).
    """
    call_kwargs = dict(call_kwargs or {})
    layer = make_layer()
    expected = _outputs(layer, inputs, call_kwargs)

    clone = keras.layers.deserialize(keras.layers.serialize(layer))
    assert type(clone) is type(layer)
    assert clone.get_config() == layer.get_config()
    if not clone.built:
        clone.build(np.shape(inputs[0]))
    clone.set_weights(layer.get_weights())
    for got, want in zip(_outputs(clone, inputs, call_kwargs), expected, strict=True):
        np.testing.assert_allclose(got, want, atol=atol)

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        mixed = make_layer()
        _outputs(mixed, inputs, call_kwargs)  # builds the variables
    finally:
        keras.config.set_dtype_policy(previous)
    assert mixed.compute_dtype == mixed_compute_dtype, mixed.compute_dtype
    assert all(w.dtype == "float32" for w in mixed.weights)
    mixed.set_weights(layer.get_weights())
    for got, want in zip(_outputs(mixed, inputs, call_kwargs), expected, strict=True):
        assert np.all(np.isfinite(got)), f"{layer.name}: non-finite output under mixed_bfloat16"
        scale = float(np.max(np.abs(want))) or 1.0
        np.testing.assert_allclose(got, want, rtol=BF16_RTOL, atol=BF16_RTOL * scale)
    return layer
