"""delg-benchmark: a --quick smoke run checks the JSON structure and that every figure is finite.

No timing assertions: speed figures are only meaningful from a full run on a quiet machine.
"""

import json
import math
import subprocess
import sys

# Figures every part must produce in a --quick run (backbone resnet_tiny, index size 3000).
EXPECTED = {
    "reranking": [
        "reranking.ours_ms_per_query",
        "reranking.official_ms_per_query",
        "reranking.speedup",
        "reranking.inlier_agreement",
        "reranking.same_order",
    ],
    "training_free": [
        "training_free.superglobal.d16.ms_per_query",
        "training_free.aqe.d16.ms_per_query",
        "training_free.dba.d16.seconds",
    ],
    "search": [
        "search.3000.exact.queries_per_second",
        "search.3000.ivf_flat.nprobe=16.queries_per_second",
        "search.3000.ivf_flat.nprobe=16.recall_at_10",
        "search.3000.ivf_flat.build_seconds",
        "search.3000.hnsw.ef_search=32.recall_at_10",
        "search.3000.hnsw.build_seconds",
        "search.3000.ivf_flat.speedup_at_recall_0.95",
    ],
    "pipeline": ["pipeline.images_per_second", "pipeline.headroom_over_training"],
    "model": [
        "matmul_peak.float32",
        "matmul_peak.bfloat16",
        "model.bare_backbone_step_images_per_second",
        "model.delg_step_images_per_second",
        "model.heads_and_losses_overhead",
    ],
    "training": [
        "training.resnet_tiny_float32.images_per_second",
        "training.resnet_tiny_float32.loop_overhead",
        "training.resnet_tiny_float32.matmul_peak_fraction",
        "training.resnet_tiny_bfloat16.images_per_second",
        "training.resnet_tiny_bfloat16.loop_overhead",
        "training.resnet_tiny.bfloat16_speedup",
        "training.demo.images_per_second",
    ],
    "extraction": [
        "extraction.resnet_tiny_float32.images_per_second",
        "extraction.resnet_tiny_float32.matmul_peak_fraction",
        "extraction.resnet_tiny_float32.network_only_matmul_peak_fraction",
    ],
}


def _run(*args, timeout=900):
    return subprocess.run(
        [sys.executable, "-m", "delg_tools.benchmark", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_quick_run_writes_every_figure_finite_with_its_runs(tmp_path):
    out = tmp_path / "bench.json"
    result = _run(
        "--quick",
        "--extraction_dtypes=float32",  # one export is enough for a smoke run
        f"--output_json={out}",
        f"--work_dir={tmp_path}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    doc = json.loads(out.read_text())
    assert doc["parts"] == list(EXPECTED)
    assert doc["settings"]["quick"] is True and doc["settings"]["repeats"] == 2
    machine = doc["machine"]
    for key in ("cpu_model", "logical_cores", "memory_total_gib", "versions", "onednn_enabled"):
        assert key in machine, key
    assert set(machine["versions"]) >= {"tensorflow", "keras", "numpy", "faiss"}
    assert set(doc["part_seconds"]) == set(doc["peak_rss_gib_after_part"]) == set(EXPECTED)
    assert doc["skipped"] == [] and doc["max_rss_gib"] > 0

    figures = {f["name"]: f for f in doc["figures"]}
    assert len(figures) == len(doc["figures"]), "figure names must be unique"
    for names in EXPECTED.values():
        for name in names:
            assert name in figures, name
    for f in doc["figures"]:
        assert set(f) == {"name", "value", "runs", "unit", "target", "met", "note"}, f
        assert f["runs"] and all(math.isfinite(r) for r in f["runs"]), f
        assert math.isfinite(f["value"]) and f["unit"], f
        # met is judged exactly when there is a target.
        assert (f["met"] is None) == (f["target"] == ""), f
    # Timed figures carry one value per repeat; the medians are of those runs.
    assert len(figures["training.resnet_tiny_float32.images_per_second"]["runs"]) == 2
    assert len(figures["matmul_peak.float32"]["runs"]) == 5
    # Planted geometry on clean data: both re-rankers find the same inliers and order.
    assert figures["reranking.same_order"]["value"] == 1.0
    assert figures["reranking.inlier_agreement"]["value"] == 1.0
    # The printed table lists every figure.
    assert "figure" in result.stdout and "met" in result.stdout
    for name in figures:
        assert name in result.stdout, name


def test_bad_flags_are_named():
    result = _run("--parts=pipeline,bogus", timeout=120)
    assert result.returncode != 0
    assert "--parts" in result.stderr and "bogus" in result.stderr
    result = _run("--search_sizes=100,abc", timeout=120)
    assert result.returncode == 2  # refused at flag parsing (tools/cli.py validators)
    assert "--search_sizes=" in result.stderr and "'abc' is not a number" in result.stderr
