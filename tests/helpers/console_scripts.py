"""The console scripts pip installs, read from setup.py's CONSOLE_SCRIPTS list."""

from __future__ import annotations

import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def console_scripts() -> dict[str, str]:
    """name -> module, from setup.py's CONSOLE_SCRIPTS (the list pip installs)."""
    with open(os.path.join(ROOT, "setup.py")) as f:
        text = f.read()
    start = text.index("CONSOLE_SCRIPTS = [")
    block = text[start : text.index("]", start) + 1]
    namespace: dict = {}
    exec(block, namespace)  # a literal list of "name = module:function" strings
    return {
        entry.split("=")[0].strip(): entry.split("=")[1].split(":")[0].strip()
        for entry in namespace["CONSOLE_SCRIPTS"]
    }
