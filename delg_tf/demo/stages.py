"""The resumable stage runner: each stage runs once, records its completion, and is skipped after.

A finished stage leaves `<stages_dir>/<stage>.json` holding what it ran (its fingerprint), its
wall time and its summary. A re-run skips a stage whose record matches; a stage without a record
(interrupted) runs again and its tool resumes its partial work; a stage whose record differs, or
that follows a stage that ran, starts over from an empty output.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable

from delg_tf.common.atomic_files import write_json_atomically
from delg_tf.demo.child_process import run_child
from delg_tf.demo.paths import Paths


class StageError(RuntimeError):
    """A stage failed; the message names it and its log file."""


@dataclasses.dataclass
class Stage:
    """One step of the pipeline: a tool run as a subprocess, or a function in this process.

    Attributes:
      name: short name, used for the log and record files.
      command: argv of the subprocess after the interpreter, or None for `function`.
      function: called with the stage's log-file path when `command` is None; returns a short
        summary printed after the stage line.
      identity: what else decides the stage's result; a changed identity re-runs the stage.
      outputs: files/folders the stage creates; removed before it starts over (never when it
        resumes after an interruption).
      ok_exit_codes: exit codes that mean success (delg-build-tfrecords exits 3 when it skipped
        bad images, which does not stop the demo).
    """

    name: str
    command: list[str] | None = None
    function: Callable[[str], str] | None = None
    identity: dict | None = None
    outputs: tuple[str, ...] = ()
    ok_exit_codes: tuple[int, ...] = (0,)

    def fingerprint(self) -> dict:
        """What the stage's record must hold for a re-run to skip it (JSON-normalised)."""
        return json.loads(json.dumps({"command": self.command, "identity": self.identity}))


@dataclasses.dataclass
class StageTime:
    """Wall time of a stage; `ran` is False when an earlier run finished it."""

    seconds: float
    ran: bool


def _record_path(paths: Paths, stage: Stage) -> str:
    return os.path.join(paths.stages_dir, stage.name + ".json")


def _read_record(paths: Paths, stage: Stage) -> dict | None:
    try:
        with open(_record_path(paths, stage), encoding="utf-8") as f:
            record = json.load(f)
    except (OSError, json.JSONDecodeError):
        return None
    return record if isinstance(record, dict) else None


def _write_record(paths: Paths, stage: Stage, seconds: float, summary: str) -> None:
    os.makedirs(paths.stages_dir, exist_ok=True)
    record = {"fingerprint": stage.fingerprint(), "seconds": seconds, "summary": summary}
    write_json_atomically(_record_path(paths, stage), record)


def _tail(path: str, lines: int = 25) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.remove(path)


def run_stage(stage: Stage, paths: Paths, *, force: bool, verbose: bool) -> StageTime:
    """Runs one stage unless its record says it is done.

    Args:
      stage: the stage.
      paths: the demo's folders.
      force: an earlier stage ran, so this one's input changed: start over.
      verbose: stream the tool's output instead of writing it to the stage's log.

    Returns:
      The stage's wall time: this run's, or the recorded one when it was skipped.

    Raises:
      StageError: naming the stage, the command and the end of its log.
    """
    record = _read_record(paths, stage)
    if not force and record is not None and record.get("fingerprint") == stage.fingerprint():
        seconds = float(record.get("seconds", 0.0))
        print(f"[demo] {stage.name:<24} done by an earlier run ({seconds:.1f} s)", flush=True)
        return StageTime(seconds, ran=False)
    if force or record is not None:
        for path in stage.outputs:  # start over: a resumed tool would mix old and new work
            _remove(path)
    if record is not None:
        os.remove(_record_path(paths, stage))
    os.makedirs(paths.logs_dir, exist_ok=True)
    log_path = os.path.join(paths.logs_dir, stage.name + ".log")
    start = time.perf_counter()
    summary = ""
    if stage.command is not None:
        argv = [sys.executable, *stage.command]
        with open(log_path, "w", encoding="utf-8") as log:
            log.write("$ " + " ".join(argv) + "\n")
            log.flush()
            out = None if verbose else log
            # The tool dies with the demo (SIGTERM, SIGINT or kill -9 of the demo).
            code = run_child(argv, stdout=out, stderr=subprocess.STDOUT if out else None)
        if code not in stage.ok_exit_codes:
            raise StageError(
                f"stage {stage.name} failed (exit status {code}); command: {' '.join(argv)}\n"
                f"last lines of {log_path}:\n{_tail(log_path)}"
            )
    else:
        try:
            summary = stage.function(log_path) or ""
        except Exception as e:
            raise StageError(f"stage {stage.name} failed: {type(e).__name__}: {e}") from e
    seconds = time.perf_counter() - start
    _write_record(paths, stage, seconds, summary)
    print(
        f"[demo] {stage.name:<24} {seconds:7.1f} s" + (f"  {summary}" if summary else ""),
        flush=True,
    )
    return StageTime(seconds, ran=True)


def run_pipeline(stages: list[Stage], paths: Paths, verbose: bool = False) -> dict[str, StageTime]:
    """Runs the stages in order; once one runs, every later one starts over too.

    Args:
      stages: the stages, in order.
      paths: the demo's folders.
      verbose: stream the tools' output instead of writing it to the stages' logs.

    Returns:
      {stage name: its wall time}, in pipeline order.

    Raises:
      StageError: from the first stage that fails; the later ones do not run.
    """
    times, force = {}, False
    for stage in stages:
        times[stage.name] = run_stage(stage, paths, force=force, verbose=verbose)
        force = force or times[stage.name].ran
    return times
