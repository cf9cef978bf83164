"""What the figures were measured on: CPU, cores, memory, library versions, oneDNN, flags, load.

`machine_description` goes into every benchmark JSON; `available_memory_bytes` sizes the search
index so the run skips a size instead of swapping.
"""

from __future__ import annotations

import importlib
import os
import platform
from typing import Any

# Environment variables that change TensorFlow/BLAS speed; recorded with every figure.
_SPEED_ENVIRONMENT = (
    "TF_ENABLE_ONEDNN_OPTS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "TF_XLA_FLAGS",
    "CUDA_VISIBLE_DEVICES",
)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _cpu_flags() -> list[str]:
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "avx512_vnni")
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    present = set(line.split(":", 1)[1].split())
                    return [flag for flag in wanted if flag in present]
    except OSError:
        pass
    return []


def _memory_gib() -> dict[str, float]:
    """MemTotal and MemAvailable in GiB (Linux), else empty."""
    out = {}
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                key, value = line.split(":", 1)
                if key in ("MemTotal", "MemAvailable"):
                    out[key] = int(value.split()[0]) / 2**20
    except (OSError, ValueError):
        pass
    return out


def available_memory_bytes() -> int | None:
    """MemAvailable in bytes (Linux), or None when unknown."""
    gib = _memory_gib().get("MemAvailable")
    return None if gib is None else int(gib * 2**30)


def _version(module: str) -> str | None:
    try:
        return getattr(importlib.import_module(module), "__version__", "unknown")
    except ImportError:
        return None


def _onednn_enabled() -> bool | None:
    try:
        from tensorflow.python.util import _pywrap_util_port

        return bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):
        return None


def machine_description() -> dict[str, Any]:
    """What the figures were measured on: CPU, cores, memory, versions, oneDNN, flags, load."""
    try:
        load = list(os.getloadavg())
    except OSError:
        load = None
    memory = _memory_gib()
    description = {
        "cpu_model": _cpu_model(),
        "cpu_flags": _cpu_flags(),
        "logical_cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_total_gib": round(memory.get("MemTotal", 0.0), 2),
        "memory_available_gib": round(memory.get("MemAvailable", 0.0), 2),
        "load_average_1_5_15": load,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {
            name: _version(name)
            for name in ("tensorflow", "keras", "numpy", "scipy", "skimage", "faiss")
        },
        "onednn_enabled": _onednn_enabled(),
        "environment": {k: os.environ[k] for k in _SPEED_ENVIRONMENT if k in os.environ},
    }
    try:
        import tensorflow as tf

        description["tf_devices"] = [d.name for d in tf.config.list_logical_devices()]
        description["tf_threads"] = {
            "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
        }
    except ImportError:  # pragma: no cover
        pass
    return description
