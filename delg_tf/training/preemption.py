"""Turns SIGTERM / SIGINT into a "stop after this loop call" request.

Cloud schedulers send SIGTERM before preempting a VM. The handler only sets a flag; the training
loop checks it between compiled loop calls, agrees with the other workers (an all-reduce, so
every worker stops at the same step), saves a checkpoint and returns normally. A second signal
restores the default handler and re-raises, so an impatient Ctrl-C still kills the process.
"""

from __future__ import annotations

import signal
import threading

from absl import logging

_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopRequest:
    """A context manager that installs the handlers and records whether a stop was requested.

    Usage:
      with StopRequest() as stop:
        while ...:
          if stop.requested: ...
    Outside the main thread (where Python cannot install signal handlers) it installs nothing and
    `requested` stays False unless `request()` is called.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._previous: dict[int, object] = {}
        self.signal_name: str | None = None

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def request(self, signal_name: str = "request") -> None:
        self.signal_name = signal_name
        self._event.set()

    def _handle(self, signum, frame) -> None:
        name = signal.Signals(signum).name
        if self._event.is_set():
            # Second signal: give up on the clean stop.
            self._restore()
            signal.raise_signal(signum)
            return
        logging.warning("%s received: will save a checkpoint and stop after this loop.", name)
        self.request(name)

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for signum in _SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        self._restore()
