"""The training tests' fixtures live in `tests.helpers.training_records` (the benchmark's too)."""

from tests.helpers.training_records import (  # noqa: F401
    make_config,
    separate_collective_keys,
    tiny_records,
)
