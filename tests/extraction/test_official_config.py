"""The official DELG pbtxt configs read into extraction settings; what cannot be honoured fails."""

import pytest

from delg_tf.extraction.official_config import parse_official_config, read_official_config

# research/delf/delf/python/delg/r50delg_gldv2clean_config.pbtxt.
R50_GLDV2CLEAN = """\
use_local_features: true
use_global_features: true
model_path: "parameters/r50delg_gldv2clean_20200914"
image_scales: 0.25
image_scales: 0.35355338
image_scales: 0.5
image_scales: 0.70710677
image_scales: 1.0
image_scales: 1.4142135
image_scales: 2.0
delf_local_config {
  use_pca: false
  max_feature_num: 1000
  score_threshold: 454.6
}
delf_global_config {
  use_pca: false
  image_scales_ind: 3
  image_scales_ind: 4
  image_scales_ind: 5
}
max_image_size: 1024
"""


def test_reads_the_official_r50_gldv2clean_config(tmp_path):
    path = tmp_path / "r50delg_gldv2clean_config.pbtxt"
    path.write_text(R50_GLDV2CLEAN)
    config = read_official_config(str(path))
    assert config.image_scales == [0.25, 0.35355338, 0.5, 0.70710677, 1.0, 1.4142135, 2.0]
    assert config.global_scales_ind == [3, 4, 5]
    assert config.attention_threshold == 454.6
    assert config.max_feature_num == 1000 and config.max_image_size == 1024
    assert config.model_path == "parameters/r50delg_gldv2clean_20200914"
    assert config.options()["attention_threshold"] == 454.6


@pytest.mark.parametrize(
    "model, threshold",
    [("r101delg_gldv2clean_20200914", 357.48), ("r50delg_gld_20200814", 175.0),
     ("r101delg_gld_20200814", 166.1)],
)  # fmt: skip
def test_reads_the_other_released_configs(model, threshold):
    text = R50_GLDV2CLEAN.replace("r50delg_gldv2clean_20200914", model).replace(
        "454.6", str(threshold)
    )
    config = parse_official_config(text)
    assert (config.model_path, config.attention_threshold) == (f"parameters/{model}", threshold)


def test_text_format_forms_and_official_defaults():
    config = parse_official_config(
        "# a comment\nuse_global_features: true\nimage_scales: [0.5, 1, 2e0]\n"
        "delf_local_config { use_pca: false }; delf_global_config { use_pca: false }\n"
        "max_image_size: 512  # trailing comment\n"
    )
    assert config.image_scales == [0.5, 1.0, 2.0]
    assert config.global_scales_ind == [0, 1, 2]  # empty image_scales_ind: every scale
    # delf_config.proto defaults, as the official extractor would use them.
    assert (config.attention_threshold, config.max_feature_num) == (100.0, 1000)


@pytest.mark.parametrize(
    "edit, message",
    [
        (("use_pca: false\n  max", "use_pca: true\n  max"),
         "c.pbtxt: delf_local_config.use_pca: true is not supported by delg-extract (it needs "
         "false)"),
        (("use_pca: false\n  image", "use_pca: true\n  image"),
         "c.pbtxt: delf_global_config.use_pca: true is not supported"),
        (("  use_pca: false\n  max", "  max"),
         "c.pbtxt: delf_local_config.use_pca is true (the delf_config.proto default when "
         "unset): PCA is not supported"),
        (("max_image_size: 1024", "max_image_size: 1024\nfoo_bar: 3"),
         'c.pbtxt: 23:1 : Message type "delf.protos.DelfConfig" has no field named "foo_bar".'),
        (("  score_threshold", "  layer_name: \"resnet_v1_50/block3\"\n  score_threshold"),
         "c.pbtxt: field delf_local_config.layer_name is not supported by delg-extract"),
        (("max_image_size: 1024", "max_image_size: 1024\nuse_square_images: true"),
         "c.pbtxt: use_square_images: true is not supported by delg-extract (it needs false)"),
        (("use_global_features: true\n", ""),
         "c.pbtxt: use_global_features is false (the delf_config.proto default when unset)"),
        (("image_scales_ind: 5", "image_scales_ind: 7"),
         "c.pbtxt: delf_global_config.image_scales_ind [3, 4, 7] must index image_scales"),
        (("max_image_size: 1024", ""), "c.pbtxt: max_image_size is -1"),
        (("score_threshold: 454.6", "score_threshold: high"), "c.pbtxt: 14:20 : "),
    ],
)  # fmt: skip
def test_what_delg_extract_cannot_honour_is_a_one_line_error(edit, message):
    old, new = edit
    assert old in R50_GLDV2CLEAN
    with pytest.raises(ValueError) as error:
        parse_official_config(R50_GLDV2CLEAN.replace(old, new), source="c.pbtxt")
    assert str(error.value).startswith(message), str(error.value)
    assert "\n" not in str(error.value)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ValueError, match="nope.pbtxt: no such file"):
        read_official_config(str(tmp_path / "nope.pbtxt"))
