"""The demo's model as `experiments/demo_cpu.flags` trains it: what the demo figures time.

The benchmark reads the demo's own flagfile instead of keeping a copy of its sizes, so the
"demo model" figures time the model `make demo` trains (backbone, crop side, batch, head widths).
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class DemoModel:
    """The delg-train settings of the demo that decide a training step's cost.

    Attributes:
      backbone: `--backbone`.
      image_size: `--image_size`, the training crop side in pixels.
      batch_size: `--batch_size`, the global batch.
      embedding_dim: `--delg_embedding_layer_dim`, the global descriptor size.
      autoencoder_dim: `--autoencoder_dimensions`, the local descriptor size.
    """

    backbone: str
    image_size: int
    batch_size: int
    embedding_dim: int
    autoencoder_dim: int


_FLAGS = {
    "backbone": ("backbone", str),
    "image_size": ("image_size", int),
    "batch_size": ("batch_size", int),
    "delg_embedding_layer_dim": ("embedding_dim", int),
    "autoencoder_dimensions": ("autoencoder_dim", int),
}


def read_flagfile(path: str) -> dict[str, str]:
    """`--name=value` lines of an absl flagfile (comments and blank lines skipped).

    Raises:
      ValueError: naming the file and line of a line that is not `--name=value`.
    """
    values = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if not line.startswith("--") or "=" not in line:
                raise ValueError(f"{path}:{number}: expected --name=value, got {line!r}")
            name, value = line[2:].split("=", 1)
            values[name] = value
    return values


def read_demo_model(flagfile: str) -> DemoModel:
    """The `DemoModel` a delg-train flagfile sets.

    Raises:
      ValueError: naming the file and the flag, if one of `_FLAGS` is missing or not a number.
    """
    values = read_flagfile(flagfile)
    fields = {}
    for flag, (field, kind) in _FLAGS.items():
        if flag not in values:
            raise ValueError(f"{flagfile}: no --{flag}; the benchmark's demo model needs it")
        try:
            fields[field] = kind(values[flag])
        except ValueError:
            raise ValueError(f"{flagfile}: --{flag}={values[flag]} is not an integer") from None
    return DemoModel(**fields)
