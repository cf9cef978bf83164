"""Walks one binary's numeric flags through bad values; prints the accepted ones as JSON.

Run as `python -m tests.helpers.numeric_flag_walk delg_tools.<tool>` from the repository root,
a process per binary: the binaries define flags of the same name, which absl refuses in one
process. A value counts as refused when absl cannot parse it (type, `lower_bound`) or when one
of the flag's validators (`tools/cli.py require_*`, registered by the entry point before it
parses argv) fails on it: what a run reports in one line before any work.
"""

from __future__ import annotations

import importlib
import json
import sys

from absl import flags

# Float flags: none of these is a meaningful setting of any delg binary.
FLOAT_BAD = ("nan", "inf", "-inf", "-1e9")
# Integer flags: no count, size, step or seed of a delg binary is negative.
INT_BAD = ("-1000000000",)


def bad_values(flag) -> tuple[str, ...]:
    if isinstance(flag.parser, flags.ListParser):  # DEFINE_list
        if flag.default is None:  # a list of numbers only if the binary checks it as one
            return ("nan", "-1e9") if flag.validators else ()
        default = flag.default
        try:
            [float(x) for x in default]
        except (TypeError, ValueError):
            return ()  # a list of names, not of numbers
        return ("nan", "-1e9") if default else ()
    if flag.flag_type() == "float":
        return FLOAT_BAD
    if flag.flag_type() == "int":
        return INT_BAD
    return ()


def refused(flag, value: str) -> bool:
    try:
        flag.parse(value)
    except (ValueError, flags.Error):
        return True  # the value is left as it was
    try:
        for validator in flag.validators:
            validator.verify(flags.FLAGS)
    except flags.ValidationError:
        return True
    finally:
        flag.unparse()
    return False


def register_validators(module_name: str) -> None:
    """Imports the binary and runs its entry point up to `cli.run`, which registers the flag
    validators (`require_*`) and would then parse argv and run `main`: stopped there."""
    from delg_tools import cli

    module = importlib.import_module(module_name)
    cli.run = lambda *args, **kwargs: None
    module.run()


def accepted(module_name: str) -> dict[str, list[str]]:
    """{flag: [bad values it accepts]} over the numeric flags `module_name` defines."""
    out = {}
    for flag in flags.FLAGS.get_flags_for_module(module_name):
        values = [v for v in bad_values(flag) if not refused(flag, v)]
        if values:
            out[flag.name] = values
    return out


def numeric_flags(module_name: str) -> list[str]:
    return [f.name for f in flags.FLAGS.get_flags_for_module(module_name) if bad_values(f)]


if __name__ == "__main__":
    name = sys.argv[1]
    register_validators(name)
    result = accepted(name)
    print(json.dumps({"numeric": numeric_flags(name), "accepted": result}))
