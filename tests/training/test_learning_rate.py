import keras
import pytest

from delg_tf.training.learning_rate import LinearDecayToZero


def test_linear_decay_to_zero_matches_the_official_formula():
    schedule = LinearDecayToZero(0.01, 1000)
    for step, expected in ((0, 0.01), (250, 0.0075), (500, 0.005), (999, 0.00001), (1000, 0.0)):
        assert float(schedule(step)) == pytest.approx(expected, abs=1e-9)
    assert float(schedule(5000)) == 0.0  # clamped, never negative


def test_schedule_serializes():
    schedule = LinearDecayToZero(0.02, 10)
    clone = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(schedule))
    assert clone.get_config() == {"initial_lr": 0.02, "max_iters": 10}
    with pytest.raises(ValueError, match="max_iters"):
        LinearDecayToZero(0.01, 0)
