"""Where the DELG local head computes its attention, and what the attention pools.

Two wirings exist (both with the autoencoder; without it they are the same model, attention
from S and pooling over S):

- `"paper"` (default): the paper (Sec. 3.2) and the official code since tensorflow/models
  commit 7ff3ebcc (2021-06-09, "Fix attention application in DELG"). Attention scores
  `a = M(S)` on the stop-gradient conv4 map S; the attention loss pools the reconstruction:
  `mean_{h,w}(l2n(S') * a)`. Keypoints are chosen from conv4, and the decoder is needed only
  in training.
- `"pre_2021"`: the official code before that commit, and delg-tf before it recorded the
  wiring. Attention on the reconstruction S', pooling over `l2n(S)`.

A model config without the `attention_wiring` key was written before delg-tf recorded it,
so it is read as `"pre_2021"` (with one warning per process): old checkpoints keep giving
the outputs they were trained to give.
"""

from __future__ import annotations

from typing import Any

from absl import logging

PAPER = "paper"
PRE_2021 = "pre_2021"
ATTENTION_WIRINGS = (PAPER, PRE_2021)
CONFIG_KEY = "attention_wiring"

_warned = False


def check_attention_wiring(wiring: str) -> str:
    """Returns `wiring` if it is known.

    Raises:
        ValueError: naming the value and the choices.
    """
    if wiring not in ATTENTION_WIRINGS:
        raise ValueError(f"attention_wiring={wiring!r}; expected one of {ATTENTION_WIRINGS}.")
    return wiring


def attention_wiring_of(config: dict[str, Any], source: str = "the model config") -> str:
    """The wiring a saved model config describes; `"pre_2021"` if it does not say.

    Args:
        config: A `DelgModel.get_config()` dict, e.g. read from model_config.json.
        source: What the config came from, for the warning (e.g. the file path).

    Returns:
        One of `ATTENTION_WIRINGS`.

    Raises:
        ValueError: for an unknown value.
    """
    global _warned
    if CONFIG_KEY in config:
        return check_attention_wiring(config[CONFIG_KEY])
    if not _warned:
        _warned = True
        logging.warning(
            "%s has no %r (written before delg-tf recorded the attention wiring): using the "
            "old wiring %r (attention on the reconstruction S', pooling over S). New runs use "
            "%r (attention on conv4, as the paper and the official code since 2021).",
            source,
            CONFIG_KEY,
            PRE_2021,
            PAPER,
        )
    return PRE_2021
