"""The binary under kill -9 and SIGTERM, in subprocesses (each costs a TF import and a trace)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import tensorflow as tf

from delg_tf.common.logdir import latest_checkpoint


def _flags(records: str, logdir: str, **overrides) -> list[str]:
    settings = dict(
        logdir=logdir,
        train_file_pattern=os.path.join(records, "train-*"),
        backbone="resnet_tiny",
        image_size=64,
        batch_size=8,
        max_iters=40,
        delg_embedding_layer_dim=64,
        autoencoder_dimensions=16,
        report_interval=1,
        save_interval=4,
        eval_interval=1000,
        strategy="one_device",
        deterministic_input=True,
        op_determinism=True,
    )
    settings.update(overrides)
    return [f"--{name}={value}" for name, value in settings.items()]


def _start(args: list[str], log_path: str, cwd: str | None = None) -> subprocess.Popen:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    # The worktree on PYTHONPATH so `-m delg_tools.train` imports this checkout from any cwd.
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = os.pathsep.join([root, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "delg_tools.train", *args],
            stdout=log,
            stderr=log,
            env=env,
            cwd=cwd,
        )


def _metrics(logdir: str) -> list[dict]:
    path = os.path.join(logdir, "metrics.jsonl")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.endswith("\n")]


def _checkpoint_step(logdir: str) -> int | None:
    prefix = latest_checkpoint(logdir)
    return int(prefix.rsplit("-", 1)[1]) if prefix else None


def _wait_for(condition, process: subprocess.Popen, log_path: str, timeout: float = 900):
    deadline = time.time() + timeout
    while not condition():
        assert process.poll() is None, open(log_path).read()[-3000:]
        assert time.time() < deadline, "timed out"
        time.sleep(0.02)


def test_kill_9_then_resume_matches_an_uninterrupted_run(tiny_records, tmp_path):
    whole, killed = str(tmp_path / "whole"), str(tmp_path / "killed")
    log_whole, log_killed = str(tmp_path / "whole.log"), str(tmp_path / "killed.log")
    # The uninterrupted run and the run to kill, side by side; the killed run's --logdir is
    # relative to its working directory, as in every README command (issue 12 item 1).
    uninterrupted = _start(_flags(tiny_records, whole), log_whole)
    victim = _start(_flags(tiny_records, "killed"), log_killed, cwd=str(tmp_path))
    _wait_for(lambda: (_checkpoint_step(killed) or 0) >= 8, victim, log_killed)
    victim.send_signal(signal.SIGKILL)
    assert victim.wait() == -signal.SIGKILL
    killed_at = _checkpoint_step(killed)
    assert killed_at is not None and killed_at < 40

    resumed = _start(_flags(tiny_records, "killed"), log_killed, cwd=str(tmp_path))
    assert resumed.wait(timeout=600) == 0, open(log_killed).read()[-3000:]
    assert uninterrupted.wait(timeout=600) == 0, open(log_whole).read()[-3000:]
    log_text = open(log_killed).read()
    assert "Resumed from" in log_text

    reference = {m["step"]: m for m in _metrics(whole)}
    assert sorted(reference) == list(range(1, 41))
    # The killed run's log holds steps logged before the kill (some after its last checkpoint)
    # and then the resumed steps; the last entry per step is the resumed one.
    after = {}
    for entry in _metrics(killed):
        after[entry["step"]] = entry
    restored = min(s for s in after if s > killed_at) - 1
    assert restored <= killed_at
    for step in range(restored + 1, 41):
        for term in ("total", "global_ce", "attention_ce", "reconstruction_mse", "grad_norm"):
            assert after[step][term] == reference[step][term], (step, term)

    # Same final weights and optimizer slots.
    a = tf.train.load_checkpoint(latest_checkpoint(whole))
    b = tf.train.load_checkpoint(latest_checkpoint(killed))
    names = [n for n in a.get_variable_to_shape_map() if not n.startswith("iterator")]
    assert any("optimizer" in n for n in names)
    for name in names:
        if name in ("_CHECKPOINTABLE_OBJECT_GRAPH", "save_counter/.ATTRIBUTES/VARIABLE_VALUE"):
            continue  # the killed run saved more often
        np.testing.assert_array_equal(a.get_tensor(name), b.get_tensor(name), err_msg=name)


def test_sigterm_saves_the_step_exits_4_and_a_rerun_resumes(tiny_records, tmp_path):
    # Relative --logdir (issue 12 item 1); exit 4, not 0, so `delg-train && delg-export` stops
    # (item 10); a second trainer on the running logdir is refused (item 4).
    logdir, log_path = str(tmp_path / "run"), str(tmp_path / "run.log")
    cwd = str(tmp_path)
    process = _start(
        _flags(tiny_records, "run", max_iters=100000, save_interval=100000, op_determinism=False),
        log_path,
        cwd=cwd,
    )
    _wait_for(lambda: len(_metrics(logdir)) >= 3, process, log_path)
    second_log = str(tmp_path / "second.log")
    second = _start(_flags(tiny_records, "run", max_iters=100000), second_log, cwd=cwd)
    assert second.wait(timeout=300) == 2, open(second_log).read()[-3000:]
    refusal = open(second_log).read().strip().splitlines()
    assert refusal[-1].startswith("delg-train: --logdir=run is in use by another delg-train")
    assert "Traceback" not in open(second_log).read()

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=300) == 4, open(log_path).read()[-3000:]
    last_step = _metrics(logdir)[-1]["step"]
    # Saved where it stopped, far from any scheduled save.
    assert _checkpoint_step(logdir) == last_step >= 3
    log_text = open(log_path).read()
    assert "Stopped by SIGTERM" in log_text
    assert (
        log_text.strip()
        .splitlines()[-1]
        .startswith(f"delg-train: stopped by SIGTERM at step {last_step} of 100000;")
    )

    # The re-run resumes from the relative logdir and finishes (exit 0); so does a re-run of
    # the finished run, which trains nothing.
    for _ in range(2):
        # Same flags as the stopped run (op_determinism changes the saved input pipeline).
        rerun_flags = _flags(tiny_records, "run", max_iters=last_step + 2, op_determinism=False)
        rerun = _start(rerun_flags, log_path, cwd=cwd)
        assert rerun.wait(timeout=600) == 0, open(log_path).read()[-3000:]
    assert open(log_path).read().count("Resumed from") == 2
    assert _checkpoint_step(logdir) == last_step + 2
