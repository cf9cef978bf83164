"""The sizes a benchmark run measures at, and the tiny sizes of a --quick smoke run."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(kw_only=True)
class Settings:
    """Resolved sizes of one run (built by `delg-benchmark` from its flags).

    Field order is the order of the "settings" object in the benchmark JSON.
    """

    repeats: int
    image_size: int
    batch_size: int
    num_classes: int
    backbone: str
    steps_per_run: int
    demo_backbone: str
    demo_image_size: int
    demo_batch_size: int
    demo_num_classes: int
    demo_embedding_dim: int
    demo_autoencoder_dim: int
    pipeline_batch_size: int
    pipeline_batches: int
    # JPEGs written for the pipeline and training parts; no flag sets it.
    pipeline_images: int = 256
    pipeline_jpeg_shape: tuple[int, int]
    # Side of the square matmul whose GFLOP/s is the peak; no flag sets it.
    matmul_size: int = 4096
    extraction_shape: tuple[int, int]
    extraction_scales: tuple[float, ...]
    extraction_dtypes: tuple[str, ...]
    num_candidates: int
    num_local_features: int
    reference_repeats: int
    search_sizes: tuple[int, ...]
    search_dim: int
    search_queries: int
    search_k: int
    search_dtype: str
    faiss_nprobe: tuple[int, ...]
    faiss_nlist: int | None
    hnsw_ef_search: tuple[int, ...]
    hnsw_max_size: int
    # The training-free part (SuperGlobal, alpha-QE, alpha-DBA); no flag sets them.
    training_free_dims: tuple[int, ...] = (128, 2048)
    training_free_index_size: int = 5000
    training_free_queries: int = 70  # Revisited Oxford's and Paris's query count
    superglobal_candidates: int = 400
    memory_margin_gib: float


def quick(settings: Settings) -> Settings:
    """`settings` with every size replaced by a tiny one (--quick: seconds, not figures).

    Kept: the demo backbone, the extraction dtypes, the search dtype and the memory margin;
    repeats are capped at 2.
    """
    return dataclasses.replace(
        settings,
        repeats=min(settings.repeats, 2),
        image_size=64,
        batch_size=2,
        num_classes=10,
        backbone="resnet_tiny",
        steps_per_run=1,
        demo_image_size=64,
        demo_batch_size=2,
        demo_num_classes=10,
        pipeline_batch_size=4,
        pipeline_batches=2,
        pipeline_images=16,
        pipeline_jpeg_shape=(96, 128),
        matmul_size=256,
        extraction_shape=(96, 128),
        extraction_scales=(0.5, 1.0),
        num_candidates=6,
        num_local_features=120,
        reference_repeats=1,
        search_sizes=(3000,),
        search_dim=32,
        search_queries=40,
        search_k=10,
        faiss_nprobe=(4, 16),
        faiss_nlist=None,
        hnsw_ef_search=(32,),
        hnsw_max_size=10000,
        training_free_dims=(16,),
        training_free_index_size=300,
        training_free_queries=8,
        superglobal_candidates=50,
    )
