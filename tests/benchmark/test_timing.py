import pytest

from delg_tf.benchmark.timing import median, release_memory


def test_median_of_odd_and_even_counts_is_a_float():
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 2.0, 3.0]) == 2.5
    value = median([3, 1, 2])  # integer runs still give a float
    assert value == 2.0 and type(value) is float


def test_median_of_nothing_names_the_problem():
    with pytest.raises(ValueError, match="median of no values"):
        median([])


def test_release_memory_runs():
    release_memory()
