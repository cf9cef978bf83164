"""Tests of the resumable stage runner (records, skipping, starting over, failures)."""

import json
import os
import re
import sys

import pytest

from delg_tf.demo.paths import Paths
from delg_tf.demo.stages import Stage, StageError, run_pipeline, run_stage


@pytest.fixture
def paths(tmp_path):
    return Paths.make(str(tmp_path / "out"), None, None, None)


def _appending_stage(name, counter, output, **kwargs):
    """A subprocess stage that counts its runs in `counter` and writes `output/done`."""
    code = (
        f"import os; open({str(counter)!r}, 'a').write('x'); "
        f"os.makedirs({str(output)!r}, exist_ok=True); "
        f"open(os.path.join({str(output)!r}, 'done'), 'w').write('ok'); print('hello from tool')"
    )
    return Stage(name, command=["-c", code], outputs=(str(output),), **kwargs)


def _runs(counter):
    return len(counter.read_text()) if counter.exists() else 0


def test_command_stage_runs_logs_and_records(paths, tmp_path, capsys):
    counter = tmp_path / "count"
    stage = _appending_stage("tool", counter, tmp_path / "output")
    time = run_stage(stage, paths, force=False, verbose=False)
    assert time.ran and time.seconds > 0
    assert _runs(counter) == 1
    assert re.search(r"^\[demo\] tool +\d+\.\d s$", capsys.readouterr().out, re.MULTILINE)
    log = open(os.path.join(paths.logs_dir, "tool.log")).read()
    assert log.startswith(f"$ {sys.executable} -c ")
    assert "hello from tool" in log
    with open(os.path.join(paths.stages_dir, "tool.json")) as f:
        record = json.load(f)
    assert record == {"fingerprint": stage.fingerprint(), "seconds": time.seconds, "summary": ""}


def test_matching_record_skips_the_stage(paths, tmp_path, capsys):
    counter = tmp_path / "count"
    stage = _appending_stage("tool", counter, tmp_path / "output")
    first = run_stage(stage, paths, force=False, verbose=False)
    capsys.readouterr()
    again = run_stage(stage, paths, force=False, verbose=False)
    assert not again.ran and again.seconds == first.seconds
    assert _runs(counter) == 1
    assert f"tool {' ' * 20}done by an earlier run ({first.seconds:.1f} s)" in (
        capsys.readouterr().out
    )


def test_changed_identity_starts_over_from_an_empty_output(paths, tmp_path):
    counter, output = tmp_path / "count", tmp_path / "output"
    run_stage(_appending_stage("tool", counter, output), paths, force=False, verbose=False)
    (output / "stale").write_text("old work")
    changed = _appending_stage("tool", counter, output, identity={"flagfile": "new"})
    assert run_stage(changed, paths, force=False, verbose=False).ran
    assert _runs(counter) == 2
    assert sorted(os.listdir(output)) == ["done"]


def test_force_starts_over_even_with_a_matching_record(paths, tmp_path):
    counter, output = tmp_path / "count", tmp_path / "output"
    stage = _appending_stage("tool", counter, output)
    run_stage(stage, paths, force=False, verbose=False)
    (output / "stale").write_text("old work")
    assert run_stage(stage, paths, force=True, verbose=False).ran
    assert _runs(counter) == 2
    assert sorted(os.listdir(output)) == ["done"]


def test_interrupted_stage_resumes_its_partial_output(paths, tmp_path):
    counter, output = tmp_path / "count", tmp_path / "output"
    output.mkdir()
    (output / "partial").write_text("shard 1 of 2")  # no record: the tool was interrupted
    assert run_stage(
        _appending_stage("tool", counter, output), paths, force=False, verbose=False
    ).ran
    assert sorted(os.listdir(output)) == ["done", "partial"]


def test_unreadable_record_counts_as_missing(paths, tmp_path):
    counter, output = tmp_path / "count", tmp_path / "output"
    os.makedirs(paths.stages_dir)
    with open(os.path.join(paths.stages_dir, "tool.json"), "w") as f:
        f.write("{torn")
    output.mkdir()
    (output / "partial").write_text("kept")
    assert run_stage(
        _appending_stage("tool", counter, output), paths, force=False, verbose=False
    ).ran
    assert (output / "partial").exists()


def test_failed_command_names_the_stage_status_and_log(paths):
    stage = Stage("broken", command=["-c", "print('the cause'); raise SystemExit(2)"])
    with pytest.raises(StageError) as error:
        run_stage(stage, paths, force=False, verbose=False)
    message = str(error.value)
    assert message.startswith("stage broken failed (exit status 2); command: ")
    assert os.path.join(paths.logs_dir, "broken.log") in message
    assert "the cause" in message
    assert not os.path.exists(os.path.join(paths.stages_dir, "broken.json"))


def test_accepted_exit_codes(paths):
    stage = Stage("skipped_images", command=["-c", "raise SystemExit(3)"], ok_exit_codes=(0, 3))
    assert run_stage(stage, paths, force=False, verbose=False).ran


def test_verbose_streams_the_output_instead_of_logging_it(paths, capfd):
    # The line is assembled by the tool, so the logged command line does not contain it.
    stage = Stage("loud", command=["-c", "print('streamed' + ' line')"])
    run_stage(stage, paths, force=False, verbose=True)
    assert "streamed line" in capfd.readouterr().out
    log = open(os.path.join(paths.logs_dir, "loud.log")).read()
    assert log == f"$ {sys.executable} -c print('streamed' + ' line')\n"


def test_function_stage_gets_its_log_path_and_prints_its_summary(paths, capsys):
    seen = []

    def function(log_path):
        seen.append(log_path)
        return "3 PNGs"

    run_stage(Stage("figures", function=function), paths, force=False, verbose=False)
    assert seen == [os.path.join(paths.logs_dir, "figures.log")]
    assert re.search(r"^\[demo\] figures +\d+\.\d s  3 PNGs$", capsys.readouterr().out, re.M)
    with open(os.path.join(paths.stages_dir, "figures.json")) as f:
        assert json.load(f)["summary"] == "3 PNGs"


def test_function_stage_failure_is_a_stage_error(paths):
    def function(log_path):
        raise ValueError("no such feature store")

    with pytest.raises(StageError, match="^stage figures failed: ValueError: no such feature"):
        run_stage(Stage("figures", function=function), paths, force=False, verbose=False)


def test_pipeline_reruns_every_stage_after_one_that_ran(paths, tmp_path):
    counters = [tmp_path / f"count{i}" for i in range(3)]
    stages = [_appending_stage(f"s{i}", counters[i], tmp_path / f"output{i}") for i in range(3)]
    times = run_pipeline(stages, paths)
    assert list(times) == ["s0", "s1", "s2"] and all(t.ran for t in times.values())
    times = run_pipeline(stages, paths)
    assert not any(t.ran for t in times.values())
    os.remove(os.path.join(paths.stages_dir, "s1.json"))
    (tmp_path / "output2" / "stale").write_text("made from s1's old output")
    times = run_pipeline(stages, paths)
    assert [t.ran for t in times.values()] == [False, True, True]
    assert [_runs(c) for c in counters] == [1, 2, 2]
    assert not (tmp_path / "output2" / "stale").exists()


def test_pipeline_stops_at_the_first_failure(paths, tmp_path):
    counter = tmp_path / "count"
    stages = [
        Stage("broken", command=["-c", "raise SystemExit(1)"]),
        _appending_stage("after", counter, tmp_path / "output"),
    ]
    with pytest.raises(StageError, match="stage broken failed"):
        run_pipeline(stages, paths)
    assert _runs(counter) == 0
