import dataclasses

from delg_tf.benchmark.settings import quick


def test_sizes_no_flag_sets_have_defaults(full_settings):
    assert full_settings.pipeline_images == 256
    assert full_settings.matmul_size == 4096


def test_field_order_is_the_json_order(full_settings):
    names = list(dataclasses.asdict(full_settings))
    assert names[:3] == ["repeats", "image_size", "batch_size"]
    assert names.index("pipeline_batches") + 1 == names.index("pipeline_images")
    assert names.index("pipeline_images") + 1 == names.index("pipeline_jpeg_shape")
    assert names.index("pipeline_jpeg_shape") + 1 == names.index("matmul_size")
    assert names.index("matmul_size") + 1 == names.index("extraction_shape")
    assert names[-1] == "memory_margin_gib"


def test_quick_replaces_every_size_by_a_tiny_one(full_settings):
    s = quick(full_settings)
    assert s.repeats == 2
    assert (s.image_size, s.batch_size, s.num_classes, s.backbone) == (64, 2, 10, "resnet_tiny")
    assert s.steps_per_run == 1
    assert (s.demo_image_size, s.demo_batch_size, s.demo_num_classes) == (64, 2, 10)
    assert (s.pipeline_batch_size, s.pipeline_batches, s.pipeline_images) == (4, 2, 16)
    assert s.pipeline_jpeg_shape == (96, 128)
    assert s.matmul_size == 256
    assert s.extraction_shape == (96, 128) and s.extraction_scales == (0.5, 1.0)
    assert (s.num_candidates, s.num_local_features, s.reference_repeats) == (6, 120, 1)
    assert s.search_sizes == (3000,)
    assert (s.search_dim, s.search_queries, s.search_k) == (32, 40, 10)
    assert s.faiss_nprobe == (4, 16) and s.faiss_nlist is None
    assert s.hnsw_ef_search == (32,) and s.hnsw_max_size == 10000


def test_quick_keeps_the_choices_that_are_not_sizes(full_settings):
    s = quick(dataclasses.replace(full_settings, demo_backbone="other", memory_margin_gib=1.5))
    assert s.demo_backbone == "other"
    assert s.extraction_dtypes == ("float32", "bfloat16")
    assert s.search_dtype == "float16"
    assert s.memory_margin_gib == 1.5


def test_quick_caps_repeats_without_raising_them(full_settings):
    assert quick(dataclasses.replace(full_settings, repeats=1)).repeats == 1
    assert quick(dataclasses.replace(full_settings, repeats=9)).repeats == 2


def test_quick_returns_a_copy(full_settings):
    quick(full_settings)
    assert full_settings.image_size == 512
