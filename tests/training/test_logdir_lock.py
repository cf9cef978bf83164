"""One trainer per logdir (issue 12 item 4): the lock, its refusal message, its release."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from delg_tf.training import logdir_lock
from delg_tf.training.preflight import FlagError

_HOLDER = textwrap.dedent(
    """
    import sys, time
    from delg_tf.training import logdir_lock
    logdir_lock.acquire(sys.argv[1])
    print("locked", flush=True)
    time.sleep(600)
    """
)


def _hold(logdir: str) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, logdir], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout.readline().strip() == "locked"
    return process


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
def test_second_process_is_refused_until_the_holder_dies(tmp_path, how):
    logdir = str(tmp_path / "run")
    holder = _hold(logdir)
    try:
        with pytest.raises(logdir_lock.LogdirLockedError) as refused:
            logdir_lock.acquire(logdir)
        message = str(refused.value)
        # Names the logdir, the holder, and what to do (including for a stale lock).
        assert f"--logdir={logdir} is in use by another delg-train (pid {holder.pid}" in message
        assert "use another --logdir" in message
        assert os.path.join(os.path.realpath(logdir), "train.lock") in message
        assert isinstance(refused.value, FlagError)
    finally:
        holder.send_signal(how)
        holder.wait()
    # The kernel released it with the process: no stale lock after kill -9.
    assert logdir_lock.acquire(logdir) is not None
    # The same process may take it again (a second Trainer on a logdir it already holds).
    assert logdir_lock.acquire(logdir) is not None
    logdir_lock.release(logdir)


def test_a_file_as_logdir_is_refused(tmp_path):
    path = tmp_path / "file"
    path.write_text("x")
    with pytest.raises(FlagError, match=r"--logdir=.*file is a file, not a directory"):
        logdir_lock.acquire(str(path))
