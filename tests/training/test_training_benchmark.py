import keras
import pytest

from delg_tf.training.trainer import Trainer
from delg_tf.training.training_benchmark import (
    backbone_step_seconds,
    bare_step_seconds,
    dtype_policy,
    loop_seconds,
)


def test_dtype_policy_restores_the_previous_policy_and_names_bad_values():
    before = keras.mixed_precision.global_policy().name
    with dtype_policy("bfloat16"):
        assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
    assert keras.mixed_precision.global_policy().name == before
    with pytest.raises(ValueError, match="'float16'"):
        with dtype_policy("float16"):
            pass


def test_backbone_step_returns_one_time_per_run():
    with keras.device("/cpu:0"):
        bare = backbone_step_seconds("resnet_tiny", image_size=32, batch_size=1, runs=2)
    assert len(bare) == 2 and all(t > 0 for t in bare)
    assert keras.mixed_precision.global_policy().name == "float32"


def test_loop_and_bare_step_time_the_same_trainer_and_update_it(make_config):
    trainer = Trainer(make_config(batch_size=2, image_size=32))
    loop = loop_seconds(trainer, runs=2, steps_per_run=2, warmup_steps=1)
    assert len(loop) == 2 and all(t > 0 for t in loop)
    assert trainer.current_step == 1 + 2 * 2  # warm-up call + two runs of two steps
    before = [v.numpy().copy() for v in trainer.model.trainable_variables[:3]]
    bare = bare_step_seconds(trainer, runs=1, warmup=1)
    assert len(bare) == 1 and bare[0] > 0
    # The bare step applies the trainer's optimizer to the trainer's model.
    after = trainer.model.trainable_variables[:3]
    assert any((b != a.numpy()).any() for b, a in zip(before, after, strict=True))
