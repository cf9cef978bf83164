"""The gfile writer of files next to checkpoints and in feature stores: old file or new one."""

from __future__ import annotations

import os

import pytest
import tensorflow as tf

from delg_tf.common.atomic_files import write_gfile_text_atomically


def test_writes_replaces_and_leaves_no_temporary_file(tmp_path):
    path = str(tmp_path / "flags.txt")
    write_gfile_text_atomically(path, "--a=1\n")
    write_gfile_text_atomically(path, "--a=2\n")
    assert open(path).read() == "--a=2\n"
    assert os.listdir(tmp_path) == ["flags.txt"]


def test_a_failed_rename_keeps_the_old_file(tmp_path, monkeypatch):
    path = str(tmp_path / "manifest.json")
    write_gfile_text_atomically(path, "old")

    def broken_rename(*args, **kwargs):
        raise tf.errors.UnavailableError(None, None, "object store went away")

    monkeypatch.setattr(tf.io.gfile, "rename", broken_rename)
    with pytest.raises(tf.errors.UnavailableError):
        write_gfile_text_atomically(path, "new")
    assert open(path).read() == "old"
