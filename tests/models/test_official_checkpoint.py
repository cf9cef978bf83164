"""Official DELG TF2 checkpoint -> DelgModel: every output of the official model, to 1e-4."""

import os

import numpy as np
import pytest
import tensorflow as tf

from delg_tf.models.local_head import attention_pool
from delg_tf.models.official_checkpoint import (
    OfficialCheckpointError,
    check_architecture,
    load_official_checkpoint,
    official_model_variables,
)
from tests.helpers.official_fixture import (  # noqa: E402
    extract_official_logdir,
    load_arrays,
    relative_difference,
)

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    logdir = extract_official_logdir(str(tmp_path_factory.mktemp("official")))
    prefix = tf.train.latest_checkpoint(os.path.join(logdir, "delf_tf2-ckpt"))
    model, config = load_official_checkpoint(prefix)
    return model, config, prefix


def _our_outputs(model, images, label):
    out = model(images, training=False)
    s = out["local_features"]
    _, attention_score = model.local_head.attention(s, training=False)
    g = out["global_descriptor"]
    return {
        "global_embedding_raw": g,
        "global_descriptor_l2": tf.math.l2_normalize(g, axis=1),
        "attention_prob": out["attention"],
        "attention_score": attention_score,
        "local_descriptors": out["local_descriptors"],
        "reconstruction": out["reconstruction"],
        "block3": s,
        "block4": out["conv5"],
        "attention_pooled_features": attention_pool(out["reconstruction"], out["attention"]),
        "attention_classifier_logits": out["attention_logits"],
        "cosine_logits_no_margin": model.global_logits(g),
        "cosine_logits_with_margin": model.global_logits(g, label, training=True),
    }


def test_config_read_from_the_variables(imported):
    _, config, _ = imported
    assert config["backbone"] == "resnet50_official" and config["num_classes"] == 7
    assert (config["embedding_dim"], config["autoencoder_dim"]) == (2048, 128)
    assert config["attention_filters"] == 512 and config["arcface_scale"] == 45.25
    assert config["attention_wiring"] == "paper"


def test_every_official_output_is_reproduced(imported):
    model, _, _ = imported
    inputs, want = load_arrays("inputs.npz"), load_arrays("outputs.npz")
    differences = {}
    for i in (0, 1):
        got = _our_outputs(model, inputs[f"in{i}_float"], inputs["labels"][i : i + 1])
        for name, value in got.items():
            differences[f"in{i}_{name}"] = relative_difference(value, want[f"in{i}_{name}"])
    assert sorted(differences) == sorted(want), "every array of outputs.npz is compared"
    print("max|d|/max|ref|:", {k: f"{v:.2e}" for k, v in sorted(differences.items())})
    assert max(differences.values()) <= TOLERANCE, differences


def test_every_variable_is_used_once_and_optimizer_slots_are_skipped(imported):
    model, _, prefix = imported
    variables = official_model_variables(prefix)
    assert len(variables) == 336  # keys.txt: 336 under model/, 229 optimizer keys skipped
    assert not any(k.startswith("optimizer") or "OPTIMIZER_SLOT" in k for k in variables)
    # 335 delg-tf variables + the ArcFace scale (a constant here) = 336, one-to-one.
    assert len(model.variables) == 335
    reader = tf.train.load_checkpoint(prefix)
    kernel = reader.get_tensor("model/backbone/l3b/conv2b/kernel/.ATTRIBUTES/VARIABLE_VALUE")
    np.testing.assert_array_equal(model.backbone.get_layer("conv3_block2_2_conv").kernel, kernel)


@pytest.mark.parametrize(
    "change, message",
    [
        # R101: conv4 has 23 blocks, l4g..l4w are extra.
        (lambda v: v.update({"backbone/l4g/conv2a/kernel": (1, 1, 1024, 256)}), "extra 1"),
        # No autoencoder.
        (lambda v: [v.pop(k) for k in list(v) if k.startswith("autoencoder/")], "missing 4"),
        # DELF-only: no global head, no ArcFace classifier, no autoencoder.
        (
            lambda v: [
                v.pop(k)
                for k in list(v)
                if k.startswith(("autoencoder/", "backbone/embedding_layer", "cosine_weights"))
            ],
            "missing 7",
        ),
    ],
)
def test_other_architectures_are_refused_naming_what_differs(imported, change, message):
    _, _, prefix = imported
    variables = dict(official_model_variables(prefix))
    change(variables)
    with pytest.raises(OfficialCheckpointError, match=message) as error:
        check_architecture(variables, "ckpt-x")
    assert "\n" not in str(error.value) and "ckpt-x" in str(error.value)
