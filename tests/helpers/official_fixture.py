"""Locates and unpacks the official DELG R50 fixture (`shared/fixtures/official_delg_r50/`).

The fixture is never copied into the repository: it is read from `<repo root>/../shared` (CI
clones main next to a copy of shared/) or from `$DELG_SHARED_DIR`.
"""

from __future__ import annotations

import os
import tarfile

import numpy as np
import pytest

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIXTURE_SUBDIR = os.path.join("fixtures", "official_delg_r50")


def fixture_dir() -> str:
    """The fixture directory; fails the test (never skips) when it is absent."""
    shared = os.environ.get("DELG_SHARED_DIR") or os.path.join(REPO_ROOT, "..", "shared")
    path = os.path.abspath(os.path.join(shared, FIXTURE_SUBDIR))
    if not os.path.isfile(os.path.join(path, "official_logdir.tar.xz")):
        pytest.fail(
            f"official DELG fixture not found: looked for {path}/official_logdir.tar.xz "
            "(set DELG_SHARED_DIR to the folder holding fixtures/official_delg_r50)"
        )
    return path


def extract_official_logdir(destination: str) -> str:
    """Unpacks the checkpoint archive into `destination`; returns the official logdir."""
    with tarfile.open(os.path.join(fixture_dir(), "official_logdir.tar.xz")) as archive:
        archive.extractall(destination, filter="data")
    return os.path.join(destination, "logdir")


def load_arrays(name: str) -> dict[str, np.ndarray]:
    with np.load(os.path.join(fixture_dir(), name)) as data:
        return dict(data)


def relative_difference(got, want) -> float:
    """max |got - want| / max |want| (shapes must agree)."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, (got.shape, want.shape)
    return float(np.abs(got - want).max() / np.abs(want).max())
