import keras
import pytest

from delg_tf.training.training_benchmark import (
    backbone_step_seconds,
    delg_step_seconds,
    dtype_policy,
)


def test_dtype_policy_restores_the_previous_policy_and_names_bad_values():
    before = keras.mixed_precision.global_policy().name
    with dtype_policy("bfloat16"):
        assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
    assert keras.mixed_precision.global_policy().name == before
    with pytest.raises(ValueError, match="'float16'"):
        with dtype_policy("float16"):
            pass


def test_step_timers_return_one_time_per_run():
    with keras.device("/cpu:0"):
        bare = backbone_step_seconds("resnet_tiny", image_size=32, batch_size=1, runs=2)
        delg = delg_step_seconds(
            {"num_classes": 3, "backbone": "resnet_tiny", "embedding_dim": 8,
             "autoencoder_dim": 4, "attention_filters": 4},
            image_size=32, batch_size=2, runs=1, compute_dtype="bfloat16",
        )  # fmt: skip
    assert len(bare) == 2 and all(t > 0 for t in bare)
    assert len(delg) == 1 and delg[0] > 0
    assert keras.mixed_precision.global_policy().name == "float32"
