"""The weighted neighbour sum shared by alpha query expansion and database augmentation.

Both replace a descriptor x by the L2-normalised sum of itself (weight 1, its similarity to itself)
and its top-k neighbours y_j weighted by s_j^alpha, s_j = <x, y_j> (Radenovic, Tolias, Chum,
"Fine-tuning CNN Image Retrieval with No Human Annotation", TPAMI 2018, alpha-QE; Gordo et al.,
"End-to-end Learning of Deep Visual Representations for Image Retrieval", IJCV 2017, DBA).
Similarities <= 0 get weight 0 (an odd alpha would otherwise subtract an unrelated image), so a
descriptor with no positively similar neighbour is left as it is.
"""

from __future__ import annotations

import numpy as np

# Radenovic et al. TPAMI 2018 use alpha = 3 for alpha-QE; we use the same default for DBA.
DEFAULT_ALPHA = 3.0
# Our default neighbourhood size (the papers tune it per dataset; not tuned here).
DEFAULT_K = 10


def neighbour_weights(similarities: np.ndarray, alpha: float) -> np.ndarray:
    """max(s, 0)^alpha, [..., k] float32."""
    s = np.maximum(np.asarray(similarities, np.float32), 0.0)
    return np.power(s, np.float32(alpha)).astype(np.float32)


def weighted_neighbour_sum(
    descriptors: np.ndarray, neighbours: np.ndarray, weights: np.ndarray
) -> np.ndarray:
    """normalise(x_i + sum_j w_ij * y_ij) for a block of descriptors.

    Args:
      descriptors: [B, D] the descriptors x_i.
      neighbours: [B, k, D] their neighbours' descriptors y_ij.
      weights: [B, k] the neighbours' weights w_ij (>= 0).

    Returns:
      [B, D] float32, unit L2 norm (a zero vector stays zero).
    """
    x = np.asarray(descriptors, np.float32)
    out = x + np.einsum("bk,bkd->bd", np.asarray(weights, np.float32), neighbours, dtype=np.float32)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return np.divide(out, norms, out=np.zeros_like(out), where=norms > 0)
