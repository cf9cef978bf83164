"""One trainer per logdir: an exclusive lock on `<logdir>/train.lock`, held by the chief.

Two trainers on one logdir would interleave checkpoints and `metrics.jsonl`. The lock is an
`fcntl.flock` on the open file, so the kernel releases it when the process ends in any way
(kill -9 included): a local lock is never stale. The file also records who holds it (pid, host,
start time) for the refusal message. Filesystems without POSIX locks (gs://, some network
mounts) get a warning and no lock; the message of a refused run says what to do if a lock
there outlives its trainer.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import time

from absl import logging

from delg_tf.training.preflight import FlagError

LOCK_FILE = "train.lock"

# Locks this process holds, by real path: a second Trainer in the same process (tests, a
# notebook resuming a run) is not another writer.
_HELD: dict[str, int] = {}


class LogdirLockedError(FlagError):
    """Another trainer holds the logdir; the message names it and says what to do."""


def _is_local(logdir: str) -> bool:
    return "://" not in logdir


def acquire(logdir: str) -> str | None:
    """Takes the logdir's lock for the rest of this process's life.

    Args:
      logdir: the run's directory (created if missing).

    Returns:
      The lock file's path, or None where no lock can be taken (a remote filesystem).

    Raises:
      LogdirLockedError: if another process holds the lock.
      FlagError: if `logdir` exists and is not a directory.
    """
    if not _is_local(logdir):
        logging.warning("%s: remote logdir, no lock; run one trainer on it at a time.", logdir)
        return None
    import fcntl

    if os.path.exists(logdir) and not os.path.isdir(logdir):
        raise FlagError(f"--logdir={logdir} is a file, not a directory.")
    os.makedirs(logdir, exist_ok=True)
    path = os.path.realpath(os.path.join(logdir, LOCK_FILE))
    if path in _HELD:
        return path
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        holder = _read_holder(fd)
        os.close(fd)
        if error.errno not in (errno.EAGAIN, errno.EACCES):  # anything else: no locking here
            logging.warning("%s: cannot lock (%s); run one trainer on it at a time.", path, error)
            return None
        raise LogdirLockedError(
            f"--logdir={logdir} is in use by another delg-train ({holder}); wait for it to "
            f"finish or use another --logdir. The lock is released when that process exits; "
            f"if none is running (a network filesystem kept the lock), delete {path}."
        ) from None
    os.ftruncate(fd, 0)
    record = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
    os.write(fd, json.dumps(record).encode())
    os.fsync(fd)
    _HELD[path] = fd
    return path


def _read_holder(fd: int) -> str:
    try:
        record = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record["started"]))
        return f"pid {record['pid']} on {record['host']}, started {started}"
    except (OSError, ValueError, KeyError, TypeError):
        return "holder unknown"


def release(logdir: str) -> None:
    """Releases this process's lock on `logdir`, if it holds one."""
    if not _is_local(logdir):
        return
    fd = _HELD.pop(os.path.realpath(os.path.join(logdir, LOCK_FILE)), None)
    if fd is not None:
        os.close(fd)
