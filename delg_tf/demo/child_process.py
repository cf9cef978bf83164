"""Runs a demo stage's tool as a child that dies with the demo (issue 12 item 5).

Killing the demo used to leave its running tool orphaned and still writing; a re-run then
started a second trainer on the same logdir. Two mechanisms, one per way the demo can die:
- SIGTERM / SIGINT to the demo: forwarded to the child (SIGTERM: the trainer saves a checkpoint
  and stops), the demo waits for it and raises `Interrupted`;
- kill -9 of the demo (no handler can run): the child asked the kernel, before starting, for
  SIGTERM when its parent dies (Linux `prctl(PR_SET_PDEATHSIG)`), so it stops the same way.
The child runs in its own session, so a terminal's Ctrl-C reaches it once, through the demo.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys

_PR_SET_PDEATHSIG = 1
_FORWARDED = (signal.SIGTERM, signal.SIGINT)


class Interrupted(RuntimeError):
    """The demo was asked to stop (SIGTERM/SIGINT); its child was stopped with it."""


def _die_with(parent_pid: int):
    def preexec() -> None:  # runs in the child between fork and exec
        if sys.platform.startswith("linux"):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(128 + signal.SIGTERM)

    return preexec


def run_child(argv: list[str], stdout=None, stderr=None) -> int:
    """Runs `argv` to completion as a child that cannot outlive this process.

    Args:
      argv: the command.
      stdout, stderr: as for `subprocess.Popen`.

    Returns:
      The child's exit status (negative: killed by that signal).

    Raises:
      Interrupted: if this process received SIGTERM/SIGINT meanwhile (after the child ended).
    """
    process = subprocess.Popen(
        argv,
        stdout=stdout,
        stderr=stderr,
        preexec_fn=_die_with(os.getpid()),
        start_new_session=True,
    )
    received: list[int] = []

    def forward(signum, frame) -> None:
        received.append(signum)
        try:
            process.send_signal(signal.SIGTERM if len(received) == 1 else signal.SIGKILL)
        except ProcessLookupError:
            pass

    try:
        previous = {s: signal.signal(s, forward) for s in _FORWARDED}
    except ValueError:  # not the main thread: there is nothing to forward from
        previous = {}
    try:
        code = process.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if received:
        raise Interrupted(
            f"{signal.Signals(received[0]).name} received: the running tool (pid {process.pid})"
            f" stopped with exit status {code}; run the demo again to resume"
        )
    return code
