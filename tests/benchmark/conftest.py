"""Settings fixtures (the binary's sizes, and after --quick), plus the training ones."""

import pytest

from delg_tf.benchmark.settings import Settings, quick
from delg_tf.export.export_settings import DEFAULT_IMAGE_SCALES
from tests.helpers.training_records import (  # noqa: F401  (the training-loop timings)
    make_config,
    separate_collective_keys,
    tiny_records,
)


def default_settings() -> Settings:
    """What `delg-benchmark` resolves with no flags."""
    return Settings(
        repeats=3,
        image_size=512,
        batch_size=8,
        num_classes=81313,
        backbone="resnet50",
        steps_per_run=2,
        demo_backbone="resnet_tiny",
        demo_image_size=128,
        demo_batch_size=32,
        demo_num_classes=150,
        demo_embedding_dim=128,
        demo_autoencoder_dim=64,
        pipeline_batch_size=32,
        pipeline_batches=8,
        pipeline_jpeg_shape=(600, 800),
        extraction_shape=(768, 1024),
        extraction_scales=DEFAULT_IMAGE_SCALES,
        extraction_dtypes=("float32", "bfloat16"),
        num_candidates=100,
        num_local_features=1000,
        reference_repeats=1,
        search_sizes=(100000, 1000000),
        search_dim=2048,
        search_queries=1000,
        search_k=100,
        search_dtype="float16",
        faiss_nprobe=(8, 16, 32),
        faiss_nlist=None,
        hnsw_ef_search=(64, 128, 256),
        hnsw_max_size=100000,
        memory_margin_gib=3.0,
    )


@pytest.fixture
def full_settings() -> Settings:
    return default_settings()


@pytest.fixture
def quick_settings() -> Settings:
    return quick(default_settings())
