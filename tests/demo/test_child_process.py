"""A demo stage's tool dies with the demo: SIGTERM, SIGINT, kill -9 (issue 12 item 5)."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import pytest

# The "tool": records its pid, notes a SIGTERM (as delg-train does: stop cleanly), else sleeps.
_CHILD = textwrap.dedent(
    """
    import os, signal, sys, time
    directory = sys.argv[1]
    def stop(signum, frame):
        open(os.path.join(directory, "child_got_" + signal.Signals(signum).name), "w").close()
        sys.exit(4)
    signal.signal(signal.SIGTERM, stop)
    with open(os.path.join(directory, "child.pid.tmp"), "w") as f:
        f.write(str(os.getpid()))
    os.rename(os.path.join(directory, "child.pid.tmp"), os.path.join(directory, "child.pid"))
    time.sleep(600)
    """
)

# The "demo": runs the tool through run_child and reports how it ended.
_PARENT = textwrap.dedent(
    """
    import sys
    from delg_tf.demo.child_process import Interrupted, run_child
    try:
        code = run_child([sys.executable, "-c", sys.argv[2], sys.argv[1]])
    except Interrupted as error:
        print("interrupted:", error, flush=True)
        sys.exit(4)
    print("child exit", code, flush=True)
    """
)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            state = next(line for line in f if line.startswith("State:"))
    except (FileNotFoundError, StopIteration, ProcessLookupError):
        return False
    return "Z" not in state.split()[1]  # a zombie has stopped running


def _start(tmp_path) -> tuple[subprocess.Popen, int]:
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT, str(tmp_path), _CHILD],
        stdout=subprocess.PIPE,
        text=True,
    )
    pid_file = tmp_path / "child.pid"
    deadline = time.time() + 120
    while not pid_file.exists():
        assert parent.poll() is None and time.time() < deadline
        time.sleep(0.05)
    return parent, int(pid_file.read_text())


def _wait_dead(pid: int, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while _alive(pid):
        assert time.time() < deadline, f"child {pid} outlived the demo"
        time.sleep(0.05)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_kill_9_of_the_demo_stops_its_child_with_sigterm(tmp_path):
    parent, child = _start(tmp_path)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    _wait_dead(child)
    # SIGTERM, not SIGKILL: the trainer gets to save its checkpoint.
    assert (tmp_path / "child_got_SIGTERM").exists()


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_the_demo_is_forwarded_and_the_demo_waits(tmp_path, how):
    parent, child = _start(tmp_path)
    parent.send_signal(how)
    out, _ = parent.communicate(timeout=60)
    assert parent.returncode == 4
    assert out.startswith(f"interrupted: {how.name} received: the running tool (pid {child})")
    assert "exit status 4" in out
    assert not _alive(child)
    assert (tmp_path / "child_got_SIGTERM").exists()


def test_a_normal_child_exit_code_is_returned(tmp_path):
    from delg_tf.demo.child_process import run_child

    assert run_child([sys.executable, "-c", "import sys; sys.exit(3)"]) == 3
