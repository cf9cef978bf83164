"""The attention wiring of DelgModel: paper default, pre-2021 option, old configs."""

import os

import numpy as np
import pytest
from absl import logging

from delg_tf.models import DelgModel, attention_wiring
from delg_tf.models.attention_wiring import PAPER, PRE_2021, attention_wiring_of
from tests.helpers.wiring_fixtures import build_seeded_model, forward, seeded_images  # noqa: E402

DATA = os.path.join(os.path.dirname(__file__), "data")


def _known(name):
    with np.load(os.path.join(DATA, name)) as data:
        return dict(data)


def _scale_decoder(model, factor):
    expand = model.local_head.autoencoder.expand
    expand.kernel.assign(expand.kernel * factor)
    expand.bias.assign(expand.bias + 0.05)


def test_paper_wiring_attention_ignores_the_decoder_but_pooling_does_not():
    model = build_seeded_model()
    assert model.attention_wiring == PAPER
    before = forward(model)
    _scale_decoder(model, 2.0)
    after = forward(model)
    np.testing.assert_array_equal(after["attention"], before["attention"])
    np.testing.assert_array_equal(after["local_descriptors"], before["local_descriptors"])
    np.testing.assert_array_equal(after["global_descriptor"], before["global_descriptor"])
    assert np.abs(after["reconstruction"] - before["reconstruction"]).max() > 0.1
    assert np.abs(after["attention_logits"] - before["attention_logits"]).max() > 1e-3


def test_pre_2021_wiring_attention_follows_the_decoder():
    # The counterpart: in the old wiring the same decoder change moves the attention.
    model = build_seeded_model(attention_wiring=PRE_2021)
    before = forward(model)
    _scale_decoder(model, 2.0)
    assert np.abs(forward(model)["attention"] - before["attention"]).max() > 1e-3


def test_without_autoencoder_the_wiring_changes_nothing_from_before():
    want = _known("pre_2021_wiring_no_autoencoder.npz")
    for wiring in (PAPER, PRE_2021):
        got = forward(build_seeded_model(use_autoencoder=False, attention_wiring=wiring))
        assert sorted(got) == sorted(want)
        for key in want:
            np.testing.assert_allclose(got[key], want[key], rtol=1e-5, atol=1e-6, err_msg=key)


def test_old_config_loads_the_pre_2021_wiring_with_the_outputs_of_before(monkeypatch):
    """pre_2021_wiring.npz was computed by the code before the wiring changed (f84437f)."""
    want = _known("pre_2021_wiring.npz")
    seeded = build_seeded_model()
    config = seeded.get_config()
    assert config["attention_wiring"] == PAPER
    del config["attention_wiring"]  # as in a model_config.json written before the change
    monkeypatch.setattr(attention_wiring, "_warned", False)
    warnings = []
    monkeypatch.setattr(logging, "warning", lambda msg, *args: warnings.append(msg % args))
    old = DelgModel.from_config(config)
    DelgModel.from_config(config)  # a second load does not warn again
    assert old.attention_wiring == PRE_2021
    assert len(warnings) == 1 and "'pre_2021'" in warnings[0]
    old.build((None, None, None, 3))
    old.set_weights(seeded.get_weights())
    got = forward(old)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-5, atol=1e-6, err_msg=key)
    # The default wiring on the same weights differs where it should, and only there.
    paper = forward(seeded)
    np.testing.assert_allclose(paper["global_descriptor"], want["global_descriptor"], atol=1e-6)
    np.testing.assert_allclose(paper["local_descriptors"], want["local_descriptors"], atol=1e-6)
    assert np.abs(paper["attention"] - want["attention"]).max() > 1e-3


def test_config_round_trip_keeps_the_wiring():
    for wiring in (PAPER, PRE_2021):
        model = build_seeded_model(attention_wiring=wiring)
        assert DelgModel.from_config(model.get_config()).attention_wiring == wiring
    with pytest.raises(ValueError, match="attention_wiring='x'"):
        attention_wiring_of({"attention_wiring": "x"})


@pytest.mark.parametrize("kwargs", [{}, {"attention_wiring": PRE_2021}, {"use_autoencoder": False}])
def test_extraction_outputs_equal_the_forward_pass(kwargs):
    model = build_seeded_model(**kwargs)
    full = model(seeded_images(), training=False)
    lean = model.extraction_outputs(seeded_images())
    assert sorted(lean) == ["attention", "conv5", "global_descriptor", "local_descriptors"]
    for key, value in lean.items():
        np.testing.assert_allclose(value, full[key], rtol=1e-6, atol=1e-7, err_msg=key)
