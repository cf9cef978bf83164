"""Receptive-field parameters computed from the layers of a Keras functional graph.

A feature at integer index `i` (along one spatial axis) of a map with receptive field
`(size, stride, padding)` sees the input pixels `[i * stride - padding,
i * stride - padding + size - 1]`; its centre is `i * stride - padding + (size - 1) / 2`.
These are the three numbers DELF/DELG export uses to place keypoints (official R50: 291, 32, 145).

Composition rules (Araujo, Norris, Sim, "Computing Receptive Fields of Convolutional Neural
Networks", Distill 2019), for a layer with kernel `k`, stride `s` and left padding `p`
applied to a map with `(r, S, P)`:

    r' = r + (k - 1) * S,   S' = S * s,   P' = P + p * S

At a merge (`Add`, `Concatenate`, ...) every branch must have the same stride; the merged
field is the union of the branch fields.
"""

from __future__ import annotations

import dataclasses

import keras


@dataclasses.dataclass(frozen=True)
class ReceptiveField:
    """Receptive field of one feature map with respect to the network input (one axis).

    Attributes:
        size: Receptive-field size in input pixels.
        stride: Distance in input pixels between neighbouring features.
        padding: Input pixels to the left/top of feature 0's field start (its field starts at
            `-padding`).
    """

    size: int
    stride: int
    padding: int

    def then(self, kernel: int, stride: int, padding: int) -> ReceptiveField:
        """Returns the field after a layer with the given kernel, stride and left padding."""
        return ReceptiveField(
            size=self.size + (kernel - 1) * self.stride,
            stride=self.stride * stride,
            padding=self.padding + padding * self.stride,
        )

    def centers(self, num: int) -> list[float]:
        """Centres in input pixels of the first `num` features along this axis."""
        return [i * self.stride - self.padding + (self.size - 1) / 2.0 for i in range(num)]


IDENTITY = ReceptiveField(size=1, stride=1, padding=0)

# Layers that act per pixel (or on channels only): they leave the field unchanged.
_POINTWISE = (
    keras.layers.InputLayer,
    keras.layers.BatchNormalization,
    keras.layers.LayerNormalization,
    keras.layers.Activation,
    keras.layers.ReLU,
    keras.layers.LeakyReLU,
    keras.layers.Softmax,
    keras.layers.Dropout,
    keras.layers.SpatialDropout2D,
    keras.layers.Identity,
    keras.layers.Rescaling,
    keras.layers.Normalization,
)
_MERGES = (
    keras.layers.Add,
    keras.layers.Subtract,
    keras.layers.Multiply,
    keras.layers.Average,
    keras.layers.Maximum,
    keras.layers.Minimum,
    keras.layers.Concatenate,
)


def _pair(value) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    return int(value[0]), int(value[1])


def _same_left_pad(kernel: int, stride: int) -> int:
    # TF 'same' padding puts floor(total / 2) on the left. For stride > 1 the total depends on
    # the input size; this is the value for input sizes divisible by the stride.
    return max(kernel - stride, 0) // 2


def _layer_geometry(layer: keras.layers.Layer) -> tuple[tuple[int, int, int], ...] | None:
    """Per-axis (kernel, stride, left padding) of a layer, or None for pointwise layers.

    Raises:
        ValueError: for layers whose receptive field is not defined (Dense, global pooling...).
    """
    if isinstance(layer, _POINTWISE):
        return None
    if isinstance(layer, keras.layers.ZeroPadding2D):
        (top, _), (left, _) = layer.padding
        return (1, 1, int(top)), (1, 1, int(left))
    if isinstance(layer, keras.layers.Cropping2D):
        (top, _), (left, _) = layer.cropping
        return (1, 1, -int(top)), (1, 1, -int(left))
    if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)):
        kernels = _pair(layer.kernel_size)
        dilations = _pair(layer.dilation_rate)
        kernels = tuple((k - 1) * d + 1 for k, d in zip(kernels, dilations, strict=True))
        strides = _pair(layer.strides)
        padding = layer.padding
    elif isinstance(layer, (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)):
        kernels = _pair(layer.pool_size)
        strides = _pair(layer.strides)
        padding = layer.padding
    else:
        raise ValueError(
            f"Cannot compute a receptive field through layer '{layer.name}' "
            f"({type(layer).__name__}): only convolutions, pooling, padding, merges and "
            "pointwise layers are supported."
        )
    geometry = []
    for k, s in zip(kernels, strides, strict=True):
        p = _same_left_pad(k, s) if padding.lower() == "same" else 0
        geometry.append((k, s, p))
    return tuple(geometry)


def _merge(fields: list[ReceptiveField], name: str) -> ReceptiveField:
    strides = {f.stride for f in fields}
    if len(strides) != 1:
        raise ValueError(f"Branches merged at '{name}' have different strides {sorted(strides)}.")
    padding = max(f.padding for f in fields)
    right = max(f.size - 1 - f.padding for f in fields)
    return ReceptiveField(size=right + padding + 1, stride=strides.pop(), padding=padding)


def compute_receptive_field(model: keras.Model, output_name: str) -> ReceptiveField:
    """Computes the receptive field of one output of a functional model from its layers.

    Args:
        model: A built Keras functional model with a single image input [B, H, W, C] and a
            dict of outputs.
        output_name: Key of the output feature map in `model.output`.

    Returns:
        The field of that output. Height and width must agree.

    Raises:
        ValueError: if the output is unknown, a layer has no receptive field, or the height and
            width fields differ.
    """
    outputs = model.output
    if not isinstance(outputs, dict) or output_name not in outputs:
        raise ValueError(f"Model '{model.name}' has no output named '{output_name}'.")
    # Per tensor: (field along H, field along W). `model.layers` is in topological order.
    fields: dict[int, tuple[ReceptiveField, ReceptiveField]] = {}
    for tensor in keras.tree.flatten(model.input):
        fields[id(tensor)] = (IDENTITY, IDENTITY)
    # `operations` (topologically ordered) also lists non-layer ops such as tensor slicing.
    for layer in model.operations:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if not isinstance(layer, keras.layers.Layer):
            raise ValueError(
                f"Cannot compute a receptive field through operation '{layer.name}' "
                f"({type(layer).__name__})."
            )
        inputs = [fields[id(t)] for t in keras.tree.flatten(layer.input)]
        if isinstance(layer, _MERGES):
            current = tuple(_merge([f[axis] for f in inputs], layer.name) for axis in (0, 1))
        else:
            if len(inputs) != 1:
                raise ValueError(f"Layer '{layer.name}' has {len(inputs)} inputs; expected 1.")
            current = inputs[0]
            geometry = _layer_geometry(layer)
            if geometry is not None:
                current = tuple(f.then(*g) for f, g in zip(current, geometry, strict=True))
        for tensor in keras.tree.flatten(layer.output):
            fields[id(tensor)] = current
    field_h, field_w = fields[id(outputs[output_name])]
    if field_h != field_w:
        raise ValueError(
            f"Output '{output_name}' has different fields along height {field_h} and "
            f"width {field_w}."
        )
    return field_h
