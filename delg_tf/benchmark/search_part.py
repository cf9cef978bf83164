"""The search figures: exact search and faiss (IVF-Flat, HNSW) per index size, with recall."""

from __future__ import annotations

from typing import Any

from delg_tf.benchmark.report import Report, figure, paired_ratio
from delg_tf.benchmark.settings import Settings


def run_search(s: Settings, report: Report) -> None:
    """queries/s, recall@k and build time per index size; skips what memory cannot hold."""
    import numpy as np

    from delg_tf.benchmark.machine import available_memory_bytes
    from delg_tf.benchmark.search_benchmark import (
        benchmark_search,
        clustered_descriptors,
        faiss_index_bytes,
    )

    dtype = np.float16 if s.search_dtype == "float16" else np.float32
    itemsize = np.dtype(dtype).itemsize
    margin = int(s.memory_margin_gib * 2**30)
    for n in s.search_sizes:
        clusters = max(8, n // 1000)  # ~1000 members per cluster: top-100 inside the cluster
        data_bytes = n * s.search_dim * itemsize
        faiss_bytes = faiss_index_bytes("ivf_flat", n, s.search_dim)
        if n <= s.hnsw_max_size:
            faiss_bytes = max(faiss_bytes, faiss_index_bytes("hnsw", n, s.search_dim))
        available = available_memory_bytes()
        if available is not None and data_bytes + margin > available:
            report.skip(
                f"search.{n}",
                f"the index needs ~{data_bytes / 2**30:.1f} GiB (+{s.memory_margin_gib} GiB "
                f"margin), {available / 2**30:.1f} GiB available",
            )
            continue
        configs = [("ivf_flat", {"nlist": s.faiss_nlist}, "nprobe", s.faiss_nprobe)]
        if n <= s.hnsw_max_size:
            configs.append(("hnsw", {}, "ef_search", s.hnsw_ef_search))
        if available is not None and data_bytes + faiss_bytes + margin > available:
            report.skip(
                f"search.{n}.faiss",
                f"index + faiss need ~{(data_bytes + faiss_bytes) / 2**30:.1f} GiB "
                f"(+{s.memory_margin_gib} GiB margin), {available / 2**30:.1f} GiB available",
            )
            configs = []
        queries = clustered_descriptors(s.search_queries, s.search_dim, clusters, seed=1)
        index = clustered_descriptors(n, s.search_dim, clusters, seed=0, dtype=dtype)
        results = benchmark_search(index, queries, s.search_k, s.repeats, configs)
        del index
        exact = results[0]
        held = (
            f"index {n}x{s.search_dim} ({clusters} clusters) held as {s.search_dtype} in RAM "
            f"({exact.memory_bytes / 2**30:.2f} GiB), converted to float32 per 32768-row block"
        )
        report.add(
            figure(f"search.{n}.exact.queries_per_second", exact.queries_per_second_runs,
                   "queries/s", f"{s.search_queries} queries, top-{s.search_k}; {held}")
        )  # fmt: skip
        best: dict[str, Any] = {}
        built: set[str] = set()
        for r in results[1:]:
            kind = r.name.split()[0]
            key = f"search.{n}.{r.name.replace(' ', '.')}"
            memory = f"faiss {kind} holds ~{r.memory_bytes / 2**30:.2f} GiB (float32 vectors)"
            report.add(
                figure(f"{key}.queries_per_second", r.queries_per_second_runs, "queries/s",
                       f"{memory}; build {r.build_seconds:.1f} s")
            )  # fmt: skip
            report.add(
                figure(f"{key}.recall_at_{s.search_k}", [r.recall], "fraction",
                       "against exact search", ">=", 0.95)
            )  # fmt: skip
            if kind not in built:
                built.add(kind)
                report.add(
                    figure(f"search.{n}.{kind}.build_seconds", [r.build_seconds], "s",
                           r.index_params)
                )  # fmt: skip
            speedup = r.queries_per_second / exact.queries_per_second
            if r.recall >= 0.95 and speedup > best.get(kind, (None, -1.0))[1]:
                best[kind] = (r, speedup)
        for kind in ("ivf_flat", "hnsw"):
            if kind in best:
                r, _ = best[kind]
                report.add(
                    figure(f"search.{n}.{kind}.speedup_at_recall_0.95",
                           paired_ratio(r.queries_per_second_runs,
                                        exact.queries_per_second_runs),
                           "x", f"fastest setting with recall >= 0.95: {r.name} "
                           f"(recall {r.recall:.4f})", ">=", 10)
                )  # fmt: skip
            elif any(r.name.startswith(kind) for r in results[1:]):
                report.add(
                    figure(f"search.{n}.{kind}.speedup_at_recall_0.95", [0.0], "x",
                           "no searched setting reached recall 0.95", ">=", 10)
                )  # fmt: skip
