import keras
import pytest

from delg_tf.benchmark.training_benchmark import (
    backbone_step,
    bare_step,
    dtype_policy,
    forward_step,
    interleaved_seconds,
    loop_steps,
)
from delg_tf.training.trainer import Trainer


def test_dtype_policy_restores_the_previous_policy_and_names_bad_values():
    before = keras.mixed_precision.global_policy().name
    with dtype_policy("bfloat16"):
        assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
    assert keras.mixed_precision.global_policy().name == before
    with pytest.raises(ValueError, match="'float16'"):
        with dtype_policy("float16"):
            pass


def test_interleaved_seconds_alternates_and_divides_by_the_steps_run():
    calls = []

    def one():
        calls.append("a")
        return 1

    def four():
        calls.append("b")
        return 4

    seconds = interleaved_seconds({"a": one, "b": four}, runs=2, warmup=1)
    assert calls == ["a", "b", "a", "b", "a", "b"]  # warm-up, then alternating runs
    assert set(seconds) == {"a", "b"} and all(len(v) == 2 for v in seconds.values())
    assert all(t >= 0 for v in seconds.values() for t in v)


def test_backbone_step_runs_and_restores_the_policy():
    with keras.device("/cpu:0"):
        step = backbone_step("resnet_tiny", image_size=32, batch_size=1, compute_dtype="bfloat16")
        assert step() == 1
    assert keras.mixed_precision.global_policy().name == "float32"


def test_loop_and_bare_step_time_the_same_trainer_and_update_it(make_config):
    trainer = Trainer(make_config(batch_size=2, image_size=32))
    seconds = interleaved_seconds(
        {
            "loop": loop_steps(trainer, steps_per_run=2),
            "bare": bare_step(trainer),
            "forward": forward_step(trainer),
        },
        runs=2,
    )
    assert set(seconds) == {"loop", "bare", "forward"}
    assert all(len(v) == 2 and all(t > 0 for t in v) for v in seconds.values())
    assert trainer.current_step == 3 * 2  # warm-up call + two runs, two steps each
    before = [v.numpy().copy() for v in trainer.model.trainable_variables[:3]]
    bare_step(trainer)()
    # The bare step applies the trainer's optimizer to the trainer's model.
    after = trainer.model.trainable_variables[:3]
    assert any((b != a.numpy()).any() for b, a in zip(before, after, strict=True))
