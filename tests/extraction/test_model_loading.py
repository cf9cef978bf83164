"""The three SavedModel kinds, told apart by what they hold and post-processed the same way."""

import numpy as np
import pytest
import tensorflow as tf

from delg_tf.extraction.extractor import ExtractionOptions, SavedModelExtractor
from delg_tf.extraction.model_loading import (
    DELG_TF,
    OFFICIAL_TF1,
    OFFICIAL_TF2,
    DelgSavedModel,
)
from tests.helpers.official_models import (  # noqa: E402
    GLOBAL_DIM,
    LOCAL_DIM,
    save_delg_tf_export,
    save_official_tf2_model,
    save_tf1_model,
)

SETTINGS = dict(image_scales=[0.5, 1.0, 2.0], global_scales_ind=[0, 1], max_image_size=200)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("kinds")
    paths = {kind: str(root / kind) for kind in (DELG_TF, OFFICIAL_TF2, OFFICIAL_TF1)}
    save_delg_tf_export(paths[DELG_TF], threshold=1.0, **SETTINGS)
    save_official_tf2_model(paths[OFFICIAL_TF2])
    save_tf1_model(paths[OFFICIAL_TF1])
    return paths


def block_image():
    image = np.zeros([64, 96, 3], np.uint8)
    image[16:40, 32:64] = (255, 255, 0)  # yellow: attention softplus(2) = 2.1
    image[48:64, 0:16] = 255  # white: attention about 6
    return image


def sorted_local(local):
    order = np.lexsort((local["locations"][:, 1], local["locations"][:, 0], local["scales"]))
    return {k: v[order] for k, v in local.items()}


def test_the_kind_is_told_from_what_the_savedmodel_holds(models):
    for kind, path in models.items():
        model = DelgSavedModel(path)
        assert model.kind == kind
        assert (model.global_dim, model.local_dim) == (GLOBAL_DIM, LOCAL_DIM)
    assert not DelgSavedModel(models[OFFICIAL_TF1]).loaded.signatures  # called by tensor name


def test_every_kind_gives_the_official_features(models):
    options = ExtractionOptions.from_settings(None, attention_threshold=1.0, **SETTINGS)
    factors = np.array([0.5, 0.25], np.float32)  # as if the original were 128 x 384
    results = {}
    for kind, path in models.items():
        extractor = SavedModelExtractor(path, options)
        assert extractor.model_kind == kind
        global_desc, local = extractor(block_image(), factors)
        # The official post-processing of the raw outputs (research/delf/delf/python/examples/
        # extractor.py).
        raw = {k: v.numpy() for k, v in extractor.raw(block_image()).items()}
        assert raw["scores"].shape == (len(raw["boxes"]), 1)
        per_scale = raw["global_descriptors"]
        assert per_scale.shape == (2, GLOBAL_DIM)
        per_scale = per_scale / np.linalg.norm(per_scale, axis=1, keepdims=True)
        expected = per_scale.sum(0) / np.linalg.norm(per_scale.sum(0))
        np.testing.assert_allclose(global_desc, expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(
            local["descriptors"],
            raw["features"] / np.linalg.norm(raw["features"], axis=1, keepdims=True),
            rtol=1e-5,
        )
        centres = (raw["boxes"][:, :2] + raw["boxes"][:, 2:]) / 2
        np.testing.assert_allclose(local["locations"], centres / factors, rtol=1e-6)
        results[kind] = global_desc, sorted_local(local)
    # Keypoints (in original pixels) lie only on the two bright blocks.
    locations = results[OFFICIAL_TF1][1]["locations"] * factors
    on_yellow = (
        (locations[:, 0] > 16)
        & (locations[:, 0] < 40)
        & (locations[:, 1] > 32)
        & (locations[:, 1] < 64)
    )
    on_white = (locations[:, 0] > 48) & (locations[:, 1] < 16)
    assert on_yellow.sum() > 0 and on_white.sum() > 0
    assert np.all(on_yellow | on_white), locations
    # Cells over the blocks: scale 0.5 has 16 px cells: 2 all yellow (the ones half black
    # fall below the threshold) + 1 white; scale 1: 3x4 yellow + 2x2 white; scale 2: 6x8 + 4x4.
    scales, counts = np.unique(results[OFFICIAL_TF1][1]["scales"], return_counts=True)
    assert dict(zip(scales.tolist(), counts.tolist(), strict=True)) == {2.0: 3, 1.0: 16, 0.5: 64}
    # The same network in the three forms gives the same features.
    ref_global, ref_local = results[DELG_TF]
    for kind in (OFFICIAL_TF2, OFFICIAL_TF1):
        np.testing.assert_allclose(results[kind][0], ref_global, rtol=1e-5, atol=1e-6)
        for key, value in ref_local.items():
            np.testing.assert_allclose(results[kind][1][key], value, rtol=1e-5, err_msg=key)


def test_an_official_model_needs_a_threshold(models):
    with pytest.raises(ValueError, match="needs --attention_threshold or --official_config"):
        SavedModelExtractor(models[OFFICIAL_TF1])


def test_what_is_missing_is_named(tmp_path):
    delf_only = str(tmp_path / "delf_only")
    save_tf1_model(delf_only, drop_outputs=("global_descriptors",))
    with pytest.raises(ValueError, match=r"lacks the tensors \['global_descriptors:0'\]"):
        DelgSavedModel(delf_only)

    other = tf.Module()
    other.f = tf.function(lambda x: {"y": x * 2}, input_signature=[tf.TensorSpec([None])])
    other_path = str(tmp_path / "other")
    tf.saved_model.save(other, other_path, signatures={"serving_default": other.f})
    with pytest.raises(ValueError, match=r"not a DELG SavedModel.*signatures: \['serving_default'"):
        DelgSavedModel(other_path)
    with pytest.raises(ValueError, match="is not a SavedModel directory"):
        DelgSavedModel(str(tmp_path))


def test_official_models_give_the_attention_map_of_our_signature(models):
    options = ExtractionOptions.from_settings(None, attention_threshold=1.0, **SETTINGS)
    ours = SavedModelExtractor(models[DELG_TF], options).attention_map(block_image(), 2.0)
    assert ours[0].shape == (16, 24)  # 128 x 192 at scale 2, 8 px cells
    for kind in (OFFICIAL_TF2, OFFICIAL_TF1):
        attention, boxes = SavedModelExtractor(models[kind], options).attention_map(
            block_image(), 2.0
        )
        np.testing.assert_allclose(attention, ours[0], rtol=1e-5)
        np.testing.assert_allclose(boxes, ours[1], rtol=1e-6)


def test_calibration_runs_on_an_official_model_without_writing(models, tmp_path):
    from PIL import Image

    from delg_tf.extraction.image_inputs import ImageRecord
    from delg_tf.extraction.threshold_calibration import calibrate_export

    Image.fromarray(block_image()).save(tmp_path / "b.png")
    records = [ImageRecord("b", str(tmp_path / "b.png"))]
    result = calibrate_export(models[OFFICIAL_TF1], records, target=5, write=False)
    # The 5th strongest location at the official default scales (0.25 ... 2), no cap.
    every = ExtractionOptions.from_settings(None, attention_threshold=-1e30, max_feature_num=10**6)
    assert every.image_scales == [0.25, 0.35355338, 0.5, 0.70710677, 1.0, 1.4142135, 2.0]
    raw = SavedModelExtractor(models[OFFICIAL_TF1], every).raw(block_image())
    fifth = np.sort(raw["scores"].numpy().reshape(-1))[::-1][4]
    assert result.threshold == pytest.approx(fifth) and fifth > 5.0  # white cells: about 6
    with pytest.raises(ValueError, match="official_tf1 model, which has no settings asset"):
        calibrate_export(models[OFFICIAL_TF1], records, target=5, write=True)


def test_visualize_draws_an_official_model(models, tmp_path):
    from PIL import Image

    from delg_tf.visualization.attention_map import visualize_attention

    Image.fromarray(block_image()).save(tmp_path / "b.png")
    count = visualize_attention(
        models[OFFICIAL_TF1], str(tmp_path / "b.png"), str(tmp_path / "out.png"),
        attention_threshold=1.0, max_image_size=200,
    )  # fmt: skip
    # Official default scales (0.25 ... 2): as many keypoints as the extractor gives.
    options = ExtractionOptions.from_settings(None, attention_threshold=1.0, max_image_size=200)
    _, local = SavedModelExtractor(models[OFFICIAL_TF1], options)(block_image(), np.ones(2))
    assert count == len(local["attention"]) > 0
    with Image.open(tmp_path / "out.png") as png:
        assert png.format == "PNG"
