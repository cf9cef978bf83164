"""Loads any DELG SavedModel and calls it one way: ours, official TF2 exports, released TF1 models.

Three kinds, told apart by what the SavedModel holds (no flag):

- `delg_tf`: written by delg-export. It has `assets/delg_export_settings.json` and a
  `serving_default` signature with the official inputs.
- `official_tf2`: an official TF2 export (`export_local_and_global_model.py`, the models the
  official configs mark `is_tf2_exported: true`). It has the same `serving_default` signature
  but no settings asset.
- `official_tf1`: a released TF1-style model (`r50delg_gld_20200814`, ...). Its graph is called
  by tensor name through `prune`, as the official extractor does when `is_tf2_exported` is false
  (`research/delf/delf/python/examples/extractor.py`). It needs no signature.

All three take the official inputs and return the official raw outputs
(`research/delf/delf/python/training/model/export_local_and_global_model.py`), so the
post-processing after them is the same code for every kind.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from delg_tf.export.export_settings import settings_path

DELG_TF = "delg_tf"
OFFICIAL_TF2 = "official_tf2"
OFFICIAL_TF1 = "official_tf1"
MODEL_KINDS = (DELG_TF, OFFICIAL_TF2, OFFICIAL_TF1)

# The official DELG export's inputs, in the order the pruned TF1 function takes them, and its
# outputs, in the order it returns them.
OFFICIAL_INPUTS = (
    "input_image",
    "input_scales",
    "input_max_feature_num",
    "input_abs_thres",
    "input_global_scales_ind",
)
OFFICIAL_OUTPUTS = ("boxes", "features", "scales", "scores", "global_descriptors")

# The probe image used only when a model's outputs have no static depth: 64 px gives every
# stride-32 network at least a 2x2 map at scale 1.
_PROBE_SIZE = 64


def is_saved_model_dir(path: str) -> bool:
    """Whether `path` holds a saved_model.pb (or .pbtxt)."""
    return any(
        tf.io.gfile.exists(os.path.join(path, name))
        for name in ("saved_model.pb", "saved_model.pbtxt")
    )


def _official_signature(loaded) -> tf.types.experimental.ConcreteFunction | None:
    """`serving_default` if it takes exactly the official inputs and returns the outputs."""
    signature = loaded.signatures.get("serving_default") if loaded.signatures else None
    if signature is None:
        return None
    inputs = set(signature.structured_input_signature[1])
    outputs = set(signature.structured_outputs)
    if inputs != set(OFFICIAL_INPUTS) or not set(OFFICIAL_OUTPUTS) <= outputs:
        return None
    return signature


def _missing_graph_tensors(loaded) -> list[str]:
    """Official tensor names absent from a TF1-style graph (all of them if it is not one)."""
    names = [f"{n}:0" for n in OFFICIAL_INPUTS + OFFICIAL_OUTPUTS]
    graph = getattr(loaded, "graph", None)
    if graph is None or not hasattr(loaded, "prune"):
        return names
    missing = []
    for name in names:
        try:
            graph.get_tensor_by_name(name)
        except (KeyError, ValueError):
            missing.append(name)
    return missing


class DelgSavedModel:
    """A loaded DELG SavedModel of any kind, called with the official inputs.

    Args:
      path: SavedModel directory.

    Attributes:
      path: The directory.
      kind: One of `MODEL_KINDS`.
      loaded: The `tf.saved_model.load` object (for a delg_tf export's other signatures).

    Raises:
      ValueError: `path` is not a SavedModel, or is one of none of the three kinds (the message
        names what is missing).
    """

    def __init__(self, path: str):
        if not is_saved_model_dir(path):
            raise ValueError(f"{path} is not a SavedModel directory (no saved_model.pb)")
        self.path = path
        try:
            self.loaded = tf.saved_model.load(path)
        except (ValueError, OSError, tf.errors.OpError) as e:  # e.g. several TF1 MetaGraphs
            first_line = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise ValueError(f"{path}: the SavedModel does not load: {first_line}") from e
        signature = _official_signature(self.loaded)
        has_settings = tf.io.gfile.exists(settings_path(path))
        missing = _missing_graph_tensors(self.loaded)
        if has_settings and signature is not None:
            self.kind = DELG_TF
        elif not missing and not has_settings:
            # A TF1-style graph with the official tensors: called by name even if it also has
            # signatures, as the official extractor calls the released models.
            self.kind = OFFICIAL_TF1
        elif signature is not None and not has_settings:
            self.kind = OFFICIAL_TF2
        else:
            found = sorted(self.loaded.signatures) if self.loaded.signatures else []
            raise ValueError(
                f"{path}: not a DELG SavedModel: no serving_default signature with exactly the "
                f"inputs {list(OFFICIAL_INPUTS)} (signatures: {found})"
                + ("" if has_settings else f", and its graph lacks the tensors {missing}")
            )
        if self.kind == OFFICIAL_TF1:
            graph = self.loaded.graph
            tensors = {
                n: graph.get_tensor_by_name(f"{n}:0") for n in OFFICIAL_INPUTS + OFFICIAL_OUTPUTS
            }
            self._input_dtypes = {n: tensors[n].dtype for n in OFFICIAL_INPUTS}
            self._static = {n: tensors[n].shape for n in OFFICIAL_OUTPUTS}
            # Pruned once: every `prune` call builds a new function.
            self._pruned = self.loaded.prune(
                feeds=[f"{n}:0" for n in OFFICIAL_INPUTS],
                fetches=[f"{n}:0" for n in OFFICIAL_OUTPUTS],
            )
        else:
            self._signature = signature
            specs = signature.structured_input_signature[1]
            self._input_dtypes = {n: specs[n].dtype for n in OFFICIAL_INPUTS}
            self._static = {n: signature.structured_outputs[n].shape for n in OFFICIAL_OUTPUTS}

    def __call__(
        self,
        image: np.ndarray | tf.Tensor,
        scales: tf.Tensor,
        max_feature_num: tf.Tensor,
        abs_thres: tf.Tensor,
        global_scales_ind: tf.Tensor,
    ) -> dict[str, tf.Tensor]:
        """The official raw outputs for one image.

        Args:
          image: uint8 [H, W, 3].
          scales: float [S] pyramid scales.
          max_feature_num: int scalar.
          abs_thres: float scalar attention threshold.
          global_scales_ind: int [G] indices into `scales`.

        Returns:
          {"boxes": [N, 4] (ymin, xmin, ymax, xmax) in image pixels, "features": [N, d] raw,
          "scales": [N] 1 / scale, "scores": [N, 1] (or [N]) attention, "global_descriptors":
          [G, D] raw}.
        """
        values = (image, scales, max_feature_num, abs_thres, global_scales_ind)
        args = [
            tf.cast(v, self._input_dtypes[n]) for n, v in zip(OFFICIAL_INPUTS, values, strict=True)
        ]
        if self.kind == OFFICIAL_TF1:
            outputs = self._pruned(*args)
            return dict(zip(OFFICIAL_OUTPUTS, outputs, strict=True))
        out = self._signature(**dict(zip(OFFICIAL_INPUTS, args, strict=True)))
        return {n: out[n] for n in OFFICIAL_OUTPUTS}

    def _depth(self, name: str) -> int:
        depth = self._static[name][-1] if self._static[name].rank else None
        if depth is not None:
            return int(depth)
        # No static depth (some graphs lose it in the pyramid loop): one tiny run tells.
        probe = self(
            np.full([_PROBE_SIZE, _PROBE_SIZE, 3], 128, np.uint8),
            tf.constant([1.0]),
            tf.constant(1),
            tf.constant(float("-inf")),
            tf.constant([0]),
        )
        return int(probe[name].shape[-1])

    @property
    def global_dim(self) -> int:
        """D, the raw global descriptor depth."""
        return self._depth("global_descriptors")

    @property
    def local_dim(self) -> int:
        """d, the raw local descriptor depth."""
        return self._depth("features")
