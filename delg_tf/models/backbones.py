"""Backbone registry: ResNet50/101 from keras.applications, the official-compatible ResNet50
and a small CPU backbone.

Every backbone is a Keras functional model taking already-normalized float images
[B, H, W, 3] and returning a dict of named feature maps:

- `conv4`: the conv4_x output (stride 16), e.g. [B, H/16, W/16, 1024] for ResNet50.
- `conv5`: the conv5_x output (stride 32), e.g. [B, H/32, W/32, 2048] for ResNet50.
- `local`: the map the local branch uses: `conv4` subsampled by 2 (stride 32, the official
  `block3_strides=True`) or `conv4` itself (stride 16).

The returned model also carries plain attributes: `backbone_name`, `input_normalization`
(the `delg_tf.data.preprocessing.normalize_image` mode it expects), `min_input_size`,
`local_stride` and the receptive fields `conv4_receptive_field`,
`conv5_receptive_field` and `local_receptive_field`, all computed from the layer graph.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable

import h5py
import keras

from delg_tf.models.fused_batch_norm import with_fused_batch_norm
from delg_tf.models.receptive_field import compute_receptive_field

# keras.applications ResNets use this BN epsilon; the small backbone follows them.
_BN_EPSILON = 1.001e-5
# The official DELF/DELG ResNet50 (tf.keras BatchNormalization default).
_OFFICIAL_BN_EPSILON = 1e-3


@dataclasses.dataclass(frozen=True)
class _BackboneEntry:
    build: Callable[[str | None], keras.Model]  # weights ("imagenet" or None) -> base model
    conv4_layer: str
    conv5_layer: str
    input_normalization: str
    has_imagenet: bool


def _keras_resnet(constructor: Callable[..., keras.Model]) -> Callable[[str | None], keras.Model]:
    def build(weights: str | None) -> keras.Model:
        return constructor(include_top=False, weights=weights, input_shape=(None, None, 3))

    return build


def _bottleneck(x, filters: int, stride: int, name: str, epsilon: float = _BN_EPSILON):
    """ResNet v1 bottleneck with the stride in the first 1x1 conv, as keras.applications."""
    shortcut = x
    if stride != 1 or x.shape[-1] != 4 * filters:
        shortcut = keras.layers.Conv2D(4 * filters, 1, strides=stride, name=f"{name}_0_conv")(x)
        shortcut = keras.layers.BatchNormalization(epsilon=epsilon, name=f"{name}_0_bn")(shortcut)
    x = keras.layers.Conv2D(filters, 1, strides=stride, name=f"{name}_1_conv")(x)
    x = keras.layers.BatchNormalization(epsilon=epsilon, name=f"{name}_1_bn")(x)
    x = keras.layers.Activation("relu", name=f"{name}_1_relu")(x)
    x = keras.layers.Conv2D(filters, 3, padding="same", name=f"{name}_2_conv")(x)
    x = keras.layers.BatchNormalization(epsilon=epsilon, name=f"{name}_2_bn")(x)
    x = keras.layers.Activation("relu", name=f"{name}_2_relu")(x)
    x = keras.layers.Conv2D(4 * filters, 1, name=f"{name}_3_conv")(x)
    x = keras.layers.BatchNormalization(epsilon=epsilon, name=f"{name}_3_bn")(x)
    x = keras.layers.Add(name=f"{name}_add")([shortcut, x])
    return keras.layers.Activation("relu", name=f"{name}_out")(x)


# (bottleneck width, number of blocks) of conv2..conv5; outputs have 4x the width channels.
_TINY_STAGES = ((16, 1), (32, 1), (64, 2), (128, 1))


def _resnet_tiny(weights: str | None) -> keras.Model:
    """A ResNet-v1-style backbone with the ResNet50 layout at 1/4 width and 5 blocks.

    conv4 has 256 channels (stride 16), conv5 512 (stride 32): about 0.25 GFLOP per 224 px
    image, so CPU tests and the demo can train it from scratch.
    """
    del weights  # Never "imagenet" here; file weights are loaded by get_backbone.
    inputs = keras.Input((None, None, 3), name="images")
    x = keras.layers.ZeroPadding2D(3, name="conv1_pad")(inputs)
    x = keras.layers.Conv2D(16, 7, strides=2, name="conv1_conv")(x)
    x = keras.layers.BatchNormalization(epsilon=_BN_EPSILON, name="conv1_bn")(x)
    x = keras.layers.Activation("relu", name="conv1_relu")(x)
    x = keras.layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = keras.layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    for stage, (filters, blocks) in enumerate(_TINY_STAGES, start=2):
        for block in range(1, blocks + 1):
            stride = 2 if block == 1 and stage > 2 else 1
            x = _bottleneck(x, filters, stride, name=f"conv{stage}_block{block}")
    return keras.Model(inputs, x, name="resnet_tiny")


# (bottleneck width, number of blocks) of ResNet50's conv2..conv5.
_RESNET50_STAGES = ((64, 3), (128, 4), (256, 6), (512, 3))


def _resnet50_official(weights: str | None) -> keras.Model:
    """ResNet50 as the official DELF/DELG code builds it, with keras.applications layer names.

    Same layers, variables and names as `keras.applications.ResNet50` (so the same weights
    layout), but the official stem and BatchNorm: conv1 is a 7x7/2 conv with `padding='same'`
    (TF pads 2 before / 3 after on an even side) and the 3x3/2 max-pool is unpadded, and every
    BatchNorm has epsilon 1e-3. Its input is RGB (x - 128) / 128 (the `"delf"` mode). Used for
    checkpoints imported from the official TF2 code (`delg_tf.models.official_checkpoint`).
    """
    del weights  # No ImageNet weights exist for this layout; file weights load in get_backbone.
    eps = _OFFICIAL_BN_EPSILON
    inputs = keras.Input((None, None, 3), name="images")
    x = keras.layers.Conv2D(64, 7, strides=2, padding="same", name="conv1_conv")(inputs)
    x = keras.layers.BatchNormalization(epsilon=eps, name="conv1_bn")(x)
    x = keras.layers.Activation("relu", name="conv1_relu")(x)
    x = keras.layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    for stage, (filters, blocks) in enumerate(_RESNET50_STAGES, start=2):
        for block in range(1, blocks + 1):
            stride = 2 if block == 1 and stage > 2 else 1
            x = _bottleneck(x, filters, stride, name=f"conv{stage}_block{block}", epsilon=eps)
    return keras.Model(inputs, x, name="resnet50_official")


_REGISTRY: dict[str, _BackboneEntry] = {
    "resnet50": _BackboneEntry(
        build=_keras_resnet(keras.applications.ResNet50),
        conv4_layer="conv4_block6_out",
        conv5_layer="conv5_block3_out",
        input_normalization="caffe",
        has_imagenet=True,
    ),
    "resnet101": _BackboneEntry(
        build=_keras_resnet(keras.applications.ResNet101),
        conv4_layer="conv4_block23_out",
        conv5_layer="conv5_block3_out",
        input_normalization="caffe",
        has_imagenet=True,
    ),
    "resnet50_official": _BackboneEntry(
        build=_resnet50_official,
        conv4_layer="conv4_block6_out",
        conv5_layer="conv5_block3_out",
        input_normalization="delf",
        has_imagenet=False,
    ),
    "resnet_tiny": _BackboneEntry(
        build=_resnet_tiny,
        conv4_layer="conv4_block2_out",
        conv5_layer="conv5_block1_out",
        input_normalization="delf",
        has_imagenet=False,
    ),
}

BACKBONES: tuple[str, ...] = tuple(sorted(_REGISTRY))


def _count_arrays(path: str) -> int:
    """Number of weight arrays stored in a Keras .h5 / .weights.h5 file (optimizer excluded)."""
    count = 0

    def visit(_, obj):
        nonlocal count
        if isinstance(obj, h5py.Dataset):
            count += 1

    with h5py.File(path, "r") as f:
        root = f["model_weights"] if "model_weights" in f else f
        for key in root:
            if not key.startswith("optimizer"):
                item = root[key]
                if isinstance(item, h5py.Dataset):
                    count += 1
                else:
                    item.visititems(visit)
    return count


def load_backbone_weights(model: keras.Model, path: str, backbone_name: str) -> None:
    """Loads a Keras weights file (legacy `.h5` or Keras 3 `.weights.h5`) into a backbone.

    Args:
        model: The backbone model (the keras.applications model for ResNets).
        path: Local weights file, e.g. `resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5`.
        backbone_name: Registry name, for the error message.

    Raises:
        FileNotFoundError: if `path` does not exist.
        ValueError: if the file is not a Keras weights file or does not match the backbone.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Backbone weights file for '{backbone_name}' not found: {path}")
    if not (path.endswith(".h5") or path.endswith(".hdf5")):
        raise ValueError(
            f"Backbone weights file {path} for '{backbone_name}' must be a Keras .h5, .hdf5 "
            "or .weights.h5 file."
        )
    try:
        num_arrays = _count_arrays(path)
    except OSError as e:
        raise ValueError(f"Backbone weights file {path} is not a readable HDF5 file: {e}") from e
    # Keras checks shapes but silently ignores extra arrays in .weights.h5 files (e.g. a
    # ResNet101 file loaded into ResNet50), so the count is checked here.
    if num_arrays != len(model.weights):
        raise ValueError(
            f"Backbone weights file {path} does not match backbone '{backbone_name}': it holds "
            f"{num_arrays} weight arrays, the backbone has {len(model.weights)}."
        )
    try:
        model.load_weights(path)
    except (ValueError, KeyError, OSError) as e:
        raise ValueError(
            f"Backbone weights file {path} does not match backbone '{backbone_name}': {e}"
        ) from e


def get_backbone(
    name: str,
    weights: str | None = None,
    block3_strides: bool = True,
    synchronized_bn: bool = False,
    fused_batch_norm: bool = True,
) -> keras.Model:
    """Builds a registered backbone with named feature-map outputs.

    Args:
        name: One of `BACKBONES`.
        weights: None (random init), `"imagenet"` (keras.applications download; ResNets
            only) or the path of a local Keras weights file for the backbone (e.g. the
            keras.applications `*_notop.h5`).
        block3_strides: If True the `local` output is conv4 subsampled by 2 (stride 32, as
            the official DELG); else it is conv4 at stride 16.
        synchronized_bn: Use cross-replica BatchNorm statistics (for multi-replica training
            equal to single-replica training at the same global batch).
        fused_batch_norm: Run the BatchNorm layers on TF's fused kernel, as tf.keras did
            (`delg_tf.models.fused_batch_norm`: same variables, and the same numbers to
            float32 rounding); synchronized BatchNorm keeps the Keras path.

    Returns:
        A functional model images [B, H, W, 3] -> dict(conv4 [B, h16, w16, C4],
        conv5 [B, h32, w32, C5], local [B, h, w, C4]) with the attributes listed in the
        module docstring.

    Raises:
        ValueError: unknown name, ImageNet weights requested for a backbone without them, or a
            weights file that does not match.
        RuntimeError: the ImageNet download failed.
    """
    if name not in _REGISTRY:
        raise ValueError(f"Unknown backbone '{name}'; choose one of {list(BACKBONES)}.")
    entry = _REGISTRY[name]
    if weights == "imagenet" and not entry.has_imagenet:
        raise ValueError(f"Backbone '{name}' has no ImageNet weights; use weights=None or a file.")
    if weights == "imagenet":
        try:
            base = entry.build("imagenet")
        except Exception as e:  # keras.utils.get_file raises a bare Exception offline
            raise RuntimeError(
                f"Could not get the ImageNet weights of '{name}' through keras.applications "
                f"({e}). Offline, pass the path of a local copy of the keras.applications "
                "'*_weights_tf_dim_ordering_tf_kernels_notop.h5' file instead of 'imagenet'."
            ) from e
    else:
        base = entry.build(None)
    if fused_batch_norm:
        base = with_fused_batch_norm(base)
    if weights is not None and weights != "imagenet":
        load_backbone_weights(base, os.fspath(weights), name)
    if synchronized_bn:
        # Read by BatchNormalization at call time (and saved by its get_config).
        for layer in base.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.synchronized = True

    conv4 = base.get_layer(entry.conv4_layer).output
    conv5 = base.get_layer(entry.conv5_layer).output
    local = conv4
    if block3_strides:
        # The official block3_strides subsampling: 1x1 max pool with stride 2 (= x[:, ::2, ::2]).
        local = keras.layers.MaxPooling2D(1, strides=2, name="block3_subsample")(conv4)
    model = keras.Model(
        base.input, {"conv4": conv4, "conv5": conv5, "local": local}, name=f"{name}_backbone"
    )
    model.backbone_name = name
    model.input_normalization = entry.input_normalization
    model.local_stride = 32 if block3_strides else 16
    model.conv4_receptive_field = compute_receptive_field(model, "conv4")
    model.conv5_receptive_field = compute_receptive_field(model, "conv5")
    model.local_receptive_field = compute_receptive_field(model, "local")
    # One conv5 cell per 32 px; keras.applications also refuses ResNet inputs below 32 px.
    model.min_input_size = model.conv5_receptive_field.stride
    return model
