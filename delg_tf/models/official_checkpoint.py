"""Reads a checkpoint of the official DELG TF2 training code into a DelgModel, by name.

The official `train.py` saves `tf.train.Checkpoint(optimizer=..., model=Delg)`. Its keys are
object paths built from the official Python attribute names, e.g.
`model/backbone/l4c/bn2b/gamma/.ATTRIBUTES/VARIABLE_VALUE`. Only the checkpoint's variables
are read (`tf.train.load_checkpoint`): no official code, TF-Slim or protos.

Mapping (official -> ours; kernels are in TF layout on both sides, nothing is transposed):

- `backbone/conv1`, `backbone/bn_conv1` -> `conv1_conv`, `conv1_bn` of `resnet50_official`;
- `backbone/l{2..5}{a..}/{conv2a,conv2b,conv2c,conv_shortcut}` ->
  `conv{2..5}_block{1..}_{1,2,3,0}_conv`, and `bn2a/bn2b/bn2c/bn_shortcut` -> `..._{1,2,3,0}_bn`;
- `backbone/embedding_layer` -> `global_head/embedding_layer` (the whitening FC);
- `cosine_weights` [D, N] -> `arcface/cosine_weights`; `scale_factor` -> the ArcFace scale;
- `attention/{conv1,bn_conv1,conv2}` -> `local_head/attention/{attn_conv1,bn_conv1,attn_conv2}`;
- `autoencoder/{conv1,conv2}` -> `local_head/autoencoder/{autoenc_conv1,autoenc_conv2}`;
- `attn_classification` -> `local_head/att_fc`.

Optimizer state (`optimizer/...`, and `.OPTIMIZER_SLOT` keys of the pre-2.11 optimizers) is
skipped. Every official model variable must map to exactly one of ours with the same shape and
every one of ours must be filled, or `OfficialCheckpointError` names what is missing or extra.
"""

from __future__ import annotations

import dataclasses
import string
from typing import Any

import numpy as np
import tensorflow as tf

from delg_tf.models.attention_wiring import PAPER
from delg_tf.models.delg_model import DelgModel

OFFICIAL_BACKBONE = "resnet50_official"
_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
_MODEL_PREFIX = "model/"
_SCALE_KEY = "scale_factor"
# ResNet50 blocks per stage (conv2..conv5 = official l2..l5).
_RESNET50_BLOCKS = {2: 3, 3: 4, 4: 6, 5: 3}
_CONVS = {"conv2a": "1", "conv2b": "2", "conv2c": "3", "conv_shortcut": "0"}
_BNS = {"bn2a": "1", "bn2b": "2", "bn2c": "3", "bn_shortcut": "0"}
_BN_VARIABLES = ("gamma", "beta", "moving_mean", "moving_variance")
_HEADS = {
    "backbone/embedding_layer": "global_head/embedding_layer",
    "attention/conv1": "local_head/attention/attn_conv1",
    "attention/conv2": "local_head/attention/attn_conv2",
    "autoencoder/conv1": "local_head/autoencoder/autoenc_conv1",
    "autoencoder/conv2": "local_head/autoencoder/autoenc_conv2",
    "attn_classification": "local_head/att_fc",
}


class OfficialCheckpointError(ValueError):
    """The checkpoint is not an official DELG R50 + autoencoder checkpoint (one-line message)."""


def official_model_variables(prefix: str) -> dict[str, tuple[int, ...]]:
    """The model variables of an official checkpoint: path under `model/` -> shape.

    Optimizer state is left out: `optimizer/...` keys and the `.OPTIMIZER_SLOT` keys that the
    pre-2.11 Keras optimizers store under each variable.

    Raises:
      OfficialCheckpointError: if the checkpoint cannot be read or holds no `model/` variable.
    """
    try:
        listed = tf.train.list_variables(prefix)
    except (tf.errors.OpError, ValueError) as e:
        raise OfficialCheckpointError(f"cannot read checkpoint {prefix}: {e}") from e
    variables = {}
    for key, shape in listed:
        if key.startswith(_MODEL_PREFIX) and key.endswith(_SUFFIX) and ".OPTIMIZER_SLOT" not in key:
            variables[key[len(_MODEL_PREFIX) : -len(_SUFFIX)]] = tuple(shape)
    if not variables:
        raise OfficialCheckpointError(
            f"checkpoint {prefix} holds no 'model/...' variables: not a checkpoint of the "
            "official DELG train.py (tf.train.Checkpoint(model=..., optimizer=...))"
        )
    return variables


def _expected_names() -> dict[str, str]:
    """Official variable path -> our variable path (without the model's own name prefix)."""
    names = {}
    for layer, ours in (("conv1", "conv1_conv"),):
        for var in ("kernel", "bias"):
            names[f"backbone/{layer}/{var}"] = f"{ours}/{var}"
    for var in _BN_VARIABLES:
        names[f"backbone/bn_conv1/{var}"] = f"conv1_bn/{var}"
    for stage, blocks in _RESNET50_BLOCKS.items():
        for block in range(1, blocks + 1):
            official = f"backbone/l{stage}{string.ascii_lowercase[block - 1]}"
            ours = f"conv{stage}_block{block}"
            for layer, index in _CONVS.items():
                if layer == "conv_shortcut" and block != 1:
                    continue
                for var in ("kernel", "bias"):
                    names[f"{official}/{layer}/{var}"] = f"{ours}_{index}_conv/{var}"
            for layer, index in _BNS.items():
                if layer == "bn_shortcut" and block != 1:
                    continue
                for var in _BN_VARIABLES:
                    names[f"{official}/{layer}/{var}"] = f"{ours}_{index}_bn/{var}"
    for official, ours in _HEADS.items():
        for var in ("kernel", "bias"):
            names[f"{official}/{var}"] = f"{ours}/{var}"
    for var in _BN_VARIABLES:
        names[f"attention/bn_conv1/{var}"] = f"local_head/attention/bn_conv1/{var}"
    names["cosine_weights"] = "arcface/cosine_weights"
    return names


def _describe(keys: list[str], limit: int = 4) -> str:
    shown = ", ".join(keys[:limit])
    return f"{len(keys)} ({shown}{', ...' if len(keys) > limit else ''})"


def check_architecture(variables: dict[str, tuple[int, ...]], source: str) -> None:
    """Checks the official variables are exactly those of an R50 DELG with the autoencoder.

    Raises:
      OfficialCheckpointError: naming the missing and extra variables, e.g. an R101 (extra
        `backbone/l4g...`), a model without the autoencoder or a DELF-only model (missing
        `autoencoder/...`, `backbone/embedding_layer`, `cosine_weights`).
    """
    expected = set(_expected_names()) | {_SCALE_KEY}
    missing = sorted(expected - set(variables))
    extra = sorted(set(variables) - expected)
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {_describe(missing)}")
        if extra:
            parts.append(f"extra {_describe(extra)}")
        raise OfficialCheckpointError(
            f"checkpoint {source} is not an official DELG ResNet50 model with the autoencoder: "
            + "; ".join(parts)
        )


@dataclasses.dataclass(frozen=True)
class ImportOptions:
    """What the checkpoint's variables cannot tell (the official train.py flags).

    Attributes:
      block3_strides: Official `--block3_strides` (default True).
      gem_power: Official `--delg_gem_power`.
      arcface_margin: Official `--delg_arcface_margin`.
      attention_wiring: "paper" for the official code since 2021-06-09 (commit 7ff3ebcc),
        "pre_2021" for checkpoints trained before it.
    """

    block3_strides: bool = True
    gem_power: float = 3.0
    arcface_margin: float = 0.1
    attention_wiring: str = PAPER


def model_config_from_variables(
    variables: dict[str, tuple[int, ...]], scale: float, options: ImportOptions
) -> dict[str, Any]:
    """The `DelgModel` arguments an official checkpoint describes."""
    embedding = variables["backbone/embedding_layer/kernel"]
    cosine = variables["cosine_weights"]
    classes = variables["attn_classification/kernel"][-1]
    if cosine[-1] != classes:
        raise OfficialCheckpointError(
            f"cosine_weights has {cosine[-1]} classes but attn_classification {classes}"
        )
    return dict(
        num_classes=int(classes),
        backbone=OFFICIAL_BACKBONE,
        backbone_weights=None,
        block3_strides=options.block3_strides,
        gem_power=options.gem_power,
        gem_trainable=False,
        embedding_dim=int(embedding[-1]),
        arcface_scale=float(scale),
        arcface_margin=options.arcface_margin,
        arcface_scale_trainable=False,
        use_autoencoder=True,
        autoencoder_dim=int(variables["autoencoder/conv1/kernel"][-1]),
        attention_filters=int(variables["attention/conv1/kernel"][-1]),
        synchronized_bn=False,
        attention_wiring=options.attention_wiring,
    )


def _our_variables(model: DelgModel) -> dict[str, tf.Variable]:
    """Our variables by path without the model name (backbone paths have no prefix)."""
    prefix = model.name + "/"
    out = {}
    for variable in model.variables:
        path = variable.path
        out[path[len(prefix) :] if path.startswith(prefix) else path] = variable
    return out


def load_official_checkpoint(
    prefix: str, options: ImportOptions | None = None
) -> tuple[DelgModel, dict[str, Any]]:
    """Builds the matching DelgModel and fills every variable from an official checkpoint.

    Args:
      prefix: Checkpoint prefix, e.g. `<official logdir>/delf_tf2-ckpt/ckpt-1`.
      options: The settings the variables do not record.

    Returns:
      (model, its config). Every official model variable was used exactly once, with its
      shape, and every variable of the model was assigned.

    Raises:
      OfficialCheckpointError: wrong architecture, a shape mismatch or a non-finite value.
    """
    options = options or ImportOptions()
    variables = official_model_variables(prefix)
    check_architecture(variables, prefix)
    reader = tf.train.load_checkpoint(prefix)
    scale = float(reader.get_tensor(_MODEL_PREFIX + _SCALE_KEY + _SUFFIX))
    config = model_config_from_variables(variables, scale, options)
    model = DelgModel(**config)
    model.build((None, None, None, 3))
    ours = _our_variables(model)
    names = _expected_names()
    targets = list(names.values())
    if sorted(targets) != sorted(ours) or len(set(targets)) != len(targets):
        unfilled = sorted(set(ours) - set(targets))
        unknown = sorted(set(targets) - set(ours))
        raise OfficialCheckpointError(
            f"the delg-tf model does not match the import mapping: unfilled "
            f"{_describe(unfilled)}, unknown {_describe(unknown)}"
        )
    for official, target in names.items():
        variable = ours[target]
        if tuple(variable.shape) != variables[official]:
            raise OfficialCheckpointError(
                f"checkpoint {prefix}: {official} has shape {list(variables[official])}, "
                f"delg-tf {target} needs {list(variable.shape)}"
            )
        value = reader.get_tensor(_MODEL_PREFIX + official + _SUFFIX)
        if not np.all(np.isfinite(value)):
            raise OfficialCheckpointError(f"checkpoint {prefix}: {official} is not finite")
        variable.assign(value.astype(variable.dtype))
    return model, config
