"""What every delg-* binary shares: exit codes, one-line errors, `--help`, a quiet start.

Exit codes (README "Crash safety and bad input"):
  0 `EXIT_OK`           finished, every input processed;
  1 `EXIT_BUG`          unexpected failure: a bug, shown with its traceback;
  2 `EXIT_USAGE`        usage error: a bad flag value, a missing or invalid input, a refused
                        resume, a held lock; one line `delg-<tool>: <what is wrong>`;
  3 `EXIT_PARTIAL`      finished, but some inputs were skipped or failed (listed in the outputs);
  4 `EXIT_INTERRUPTED`  stopped by SIGTERM/SIGINT with the state saved: a re-run resumes.

`run(main, tool=..., module=...)` is each binary's console-script entry point. It
- makes `--help` work for the installed scripts: absl prints the docstring of `__main__` and the
  flags registered under `sys.argv[0]`, which for a console script is the entry-point wrapper
  (no docstring, no flags); the tool's docstring and flags are handed over to it;
- turns flag-parsing errors (absl: exit 1 and a hint) and `UsageError`s into one line, exit 2;
- turns the exceptions that mean bad input (a missing file, a refused value; `USER_ERRORS` plus
  the tool's own) into one line, exit 2; anything else keeps its traceback (exit 1);
- silences TensorFlow's C++ start-up lines (`TF_CPP_MIN_LOG_LEVEL=2` unless the user set it;
  this module is imported before TensorFlow by every binary through `delg_tools/__init__.py`).
"""

from __future__ import annotations

import errno
import math
import os
import sys
from collections.abc import Callable, Sequence

EXIT_OK = 0
EXIT_BUG = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3
EXIT_INTERRUPTED = 4


def quiet_tensorflow() -> None:
    """Hides TF's C++ INFO/WARNING start-up lines (oneDNN, cpu_feature_guard, absl pre-init)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


quiet_tensorflow()

from absl import app, flags, logging  # noqa: E402  (after the environment is set)


class UsageError(Exception):
    """Bad flags or inputs: printed as `delg-<tool>: <message>`, exit 2, no traceback."""


class Interrupted(Exception):
    """Stopped by a signal with the state saved: printed as one line, exit 4."""


# Exceptions that mean "the user gave something that cannot work", wherever they are raised.
USER_ERRORS: tuple[type[BaseException], ...] = (
    UsageError,
    app.UsageError,
    flags.Error,
    FileNotFoundError,
    FileExistsError,
    NotADirectoryError,
    IsADirectoryError,
    PermissionError,
)


_HELP_FLAGS = {"--help", "-help", "-h", "-?", "--helpshort", "--helpfull", "--helpxml"}


def _tf_user_errors() -> tuple[type[BaseException], ...]:
    """TF's file errors, if TensorFlow is loaded (never imported just for this)."""
    tf = sys.modules.get("tensorflow")
    if tf is None:
        return ()
    return (tf.errors.NotFoundError, tf.errors.DataLossError, tf.errors.PermissionDeniedError)


def _one_line(error: BaseException) -> str:
    """The error's message on one line (TF OpErrors append an op trace: only the first line)."""
    # KeyError's str() is the repr of its argument; the message is the argument itself.
    text = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
    text = str(text).strip() or type(error).__name__
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if type(error).__module__.startswith("tensorflow"):
        return lines[0]
    return "; ".join(lines)


def fail(tool: str, message: str, code: int = EXIT_USAGE) -> None:
    """Prints `<tool>: <message>` on stderr and exits with `code`."""
    print(f"{tool}: {message}", file=sys.stderr, flush=True)
    sys.exit(code)


def _adopt_main_module(module_name: str) -> None:
    """Gives `__main__` (the console-script wrapper) the tool's docstring and key flags."""
    main = sys.modules.get("__main__")
    tool_module = sys.modules.get(module_name)
    if main is None or tool_module is None or main is tool_module:
        return
    if not getattr(main, "__doc__", None):
        main.__doc__ = tool_module.__doc__
    for flag in flags.FLAGS.get_key_flags_for_module(module_name):
        flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)


def run(
    main: Callable[[list[str]], int | None],
    *,
    tool: str,
    module: str,
    required: Sequence[str] = (),
    user_errors: tuple[type[BaseException], ...] = (),
    known_only: bool = False,
) -> None:
    """Runs an absl `main` as the binary `tool` with this module's conventions.

    Args:
      main: the absl main; it may return an exit code.
      tool: the command name, e.g. "delg-extract" (the prefix of every error line).
      module: the module defining the tool's flags and docstring (`__name__` of the binary).
      required: flags marked required here, not at import (tests import several binaries).
      user_errors: further exception types that mean bad input for this tool.
      known_only: leave flags the binary does not define in `argv` for `main` (delg-extract
        passes them to Apache Beam) instead of refusing them.
    """
    if required:
        flags.mark_flags_as_required(list(required))
    _adopt_main_module(module)
    caught = USER_ERRORS + user_errors

    def parse(argv: list[str]) -> list[str]:
        try:
            return flags.FLAGS(argv, known_only=known_only)
        except flags.Error as error:
            fail(tool, _one_line(error))
        except SystemExit as done:
            # absl's --help/--helpfull print the help and exit 1; asking for help succeeded.
            if done.code == 1 and _HELP_FLAGS & {a.split("=")[0] for a in argv[1:]}:
                sys.exit(EXIT_OK)
            raise

    def guarded(argv: list[str]) -> int | None:
        try:
            code = main(argv)
        except Interrupted as error:
            fail(tool, _one_line(error), EXIT_INTERRUPTED)
        except caught + _tf_user_errors() as error:
            fail(tool, _one_line(error))
        except OSError as error:
            if error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
                fail(tool, f"{error.filename or ''}: {os.strerror(error.errno)}".lstrip(": "))
            raise
        return code

    app.run(guarded, flags_parser=parse)


# --- Flag checks, registered as absl validators so they run at parse time, before any work.


def _register(flag: str, check: Callable[[object], bool], what: str) -> None:
    def validator(value: object) -> bool:
        if value is None:
            return True
        values = value if isinstance(value, list) else [value]
        for item in values:
            try:
                number = float(item)
            except (TypeError, ValueError):
                raise flags.ValidationError(f"{item!r} is not a number") from None
            # absl prefixes the message with "flag --<name>=<value>: ".
            if not math.isfinite(number) or not check(number):
                raise flags.ValidationError(f"must be {what}")
        return True

    flags.register_validator(flag, validator)


def require_positive(*names: str) -> None:
    """Each flag (number or list of numbers) must be finite and > 0 (None is allowed)."""
    for name in names:
        _register(name, lambda x: x > 0, "a finite number > 0")


def require_non_negative(*names: str) -> None:
    """Each flag must be finite and >= 0 (None is allowed)."""
    for name in names:
        _register(name, lambda x: x >= 0, "a finite number >= 0")


def require_finite(*names: str) -> None:
    """Each flag must be a finite number (None is allowed)."""
    for name in names:
        _register(name, lambda x: True, "a finite number")


def require_range(name: str, low: float, high: float, *, low_open: bool = False) -> None:
    """The flag must lie in [low, high] (or (low, high] with `low_open`)."""
    if low_open:
        _register(name, lambda x: low < x <= high, f"in ({low:g}, {high:g}]")
    else:
        _register(name, lambda x: low <= x <= high, f"in [{low:g}, {high:g}]")


def require_indices(*names: str) -> None:
    """Each flag (an int or a list) must hold whole numbers >= 0 (None is allowed)."""
    for name in names:
        _register(name, lambda x: x >= 0 and x == int(x), "whole numbers >= 0")


def require_positive_or(name: str, special: float) -> None:
    """The flag must be > 0 or exactly `special` (e.g. -1 for "no cap")."""
    _register(name, lambda x: x > 0 or x == special, f"> 0 or {special:g}")


__all__ = [
    "EXIT_BUG",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_PARTIAL",
    "EXIT_USAGE",
    "Interrupted",
    "USER_ERRORS",
    "UsageError",
    "fail",
    "logging",
    "require_finite",
    "require_indices",
    "require_non_negative",
    "require_positive",
    "require_positive_or",
    "require_range",
    "run",
]
