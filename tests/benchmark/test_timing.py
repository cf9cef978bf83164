import pytest

from delg_tf.benchmark.timing import median, release_memory, timed_runs


def test_median_of_odd_and_even_counts_is_a_float():
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 2.0, 3.0]) == 2.5
    value = median([3, 1, 2])  # integer runs still give a float
    assert value == 2.0 and type(value) is float


def test_median_of_nothing_names_the_problem():
    with pytest.raises(ValueError, match="median of no values"):
        median([])


def test_timed_runs_calls_warmup_then_runs():
    calls = []
    times = timed_runs(lambda: calls.append(1), runs=3, warmup=2)
    assert len(calls) == 5
    assert len(times) == 3 and all(t >= 0.0 for t in times)


def test_timed_runs_needs_one_run():
    with pytest.raises(ValueError, match="runs must be >= 1, got 0"):
        timed_runs(lambda: None, runs=0)


def test_release_memory_runs():
    release_memory()
