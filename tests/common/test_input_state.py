"""The state that decides whether a recorded failure is retried (issue 12 item 6)."""

import hashlib
import os

from delg_tf.common.input_state import input_state


def test_state_follows_what_a_reader_would_get(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    path = folder / "a.jpg"
    assert input_state(str(path)) == "missing"
    path.write_bytes(b"corrupt")
    assert input_state(str(path)) == "sha256:" + hashlib.sha256(b"corrupt").hexdigest()
    before = input_state(str(path))
    os.utime(path, (1, 1))  # touching a file does not make a failure retryable
    assert input_state(str(path)) == before
    path.write_bytes(b"fixed")
    assert input_state(str(path)) != before


def test_fifo_is_not_opened_and_links_leaving_the_folder_differ(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    fifo = folder / "pipe.jpg"
    os.mkfifo(fifo)
    assert input_state(str(fifo)) == "not a regular file"  # returns: it would hang if opened
    outside = tmp_path / "outside.jpg"
    outside.write_bytes(b"bytes")
    link = folder / "link.jpg"
    link.symlink_to(outside)
    assert input_state(str(link), root=str(folder)) == f"outside {folder}"
    assert input_state(str(link)).startswith("sha256:")  # no folder given: the target's bytes
