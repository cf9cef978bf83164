"""The resolved-flags record every binary leaves next to its outputs: `flags.txt`.

One name and one format for all of them: absl flagfile lines (`--name=value`), so a run can be
repeated with `--flagfile=<dir>/flags.txt`. The binary chooses which flags go in (all of them via
`FLAGS.flags_into_string()`, or only those that decide the output, via `serialize_flags`);
library code never reads absl FLAGS, so it receives the text.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from delg_tf.common.atomic_files import write_text_atomically

FLAGS_RECORD = "flags.txt"


def serialize_flags(flag_values, names: Iterable[str]) -> str:
    """Flagfile lines for `names` only, in the given order (absl's own serialization).

    Args:
      flag_values: an `absl.flags.FlagValues` (passed in: this module never reads FLAGS).
      names: the flags to record.
    """
    return "".join(flag_values[name].serialize() + "\n" for name in names)


def write_flags_record(directory: str, flags_text: str) -> str:
    """Writes `flags_text` to `<directory>/flags.txt` atomically; returns the path."""
    path = os.path.join(directory, FLAGS_RECORD)
    write_text_atomically(path, flags_text)
    return path
