"""Tests for the sharded on-disk feature store."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from delg_tf.extraction.feature_store import (
    FeatureStore,
    FeatureStoreError,
    FeatureStoreWriter,
    RecordMismatchError,
)


def _features(i: int, n_local: int, global_dim: int = 8, local_dim: int = 4):
    rng = np.random.default_rng(i)
    g = rng.normal(size=global_dim).astype(np.float32)
    local = {
        "descriptors": rng.normal(size=(n_local, local_dim)).astype(np.float32),
        "locations": rng.uniform(0, 100, size=(n_local, 2)).astype(np.float32),
        "scales": np.full(n_local, 0.5 + i, np.float32),
        "attention": np.arange(n_local, dtype=np.float32) + i,
    }
    return g, local


def _write(path, ids, shard_size=3, n_local=lambda i: i % 4):
    with FeatureStoreWriter(str(path), global_dim=8, local_dim=4, shard_size=shard_size) as w:
        for i in ids:
            g, local = _features(i, n_local(i))
            w.add(f"img{i}", g, local)


def test_round_trip_across_shards(tmp_path):
    _write(tmp_path, range(8))  # shards of 3, 3, 2; image 0 and 4 have no local features
    store = FeatureStore(str(tmp_path))
    assert store.ids == [f"img{i}" for i in range(8)]
    assert len(store) == 8 and store.complete
    assert [s["num_images"] for s in store.manifest["shards"]] == [3, 3, 2]
    for i in range(8):
        g, local = _features(i, i % 4)
        assert store.index_of(f"img{i}") == i
        np.testing.assert_array_equal(store.global_descriptor(f"img{i}"), g)
        got = store.local_features(f"img{i}")
        for key in local:
            np.testing.assert_array_equal(got[key], local[key])
    all_global = store.global_descriptors()
    assert all_global.shape == (8, 8)
    expected = np.stack([_features(i, 0)[0] for i in range(8)])
    np.testing.assert_array_equal(np.asarray(all_global), expected)
    np.testing.assert_array_equal(all_global[[7, 0, 4]], expected[[7, 0, 4]])
    np.testing.assert_array_equal(all_global[5], expected[5])
    chunks = list(all_global.chunks(2))
    assert [start for start, _ in chunks] == [0, 2, 3, 5, 6]
    np.testing.assert_array_equal(np.concatenate([c for _, c in chunks]), expected)


def test_arrays_are_memory_mapped_npy(tmp_path):
    _write(tmp_path, range(4))
    store = FeatureStore(str(tmp_path))
    for _, chunk in store.global_descriptors().chunks():
        assert isinstance(chunk.base if chunk.base is not None else chunk, np.memmap) or isinstance(
            chunk, np.memmap
        )
    loaded = np.load(tmp_path / "shard-00000.local_descriptors.npy", mmap_mode="r")
    assert loaded.shape == (0 + 1 + 2, 4)  # images 0, 1, 2 have 0, 1, 2 features


def test_float16_storage_and_global_only(tmp_path):
    with FeatureStoreWriter(str(tmp_path), 8, None, shard_size=2, global_dtype="float16") as w:
        w.add("a", np.arange(8, dtype=np.float32))
        with pytest.raises(ValueError, match="local_dim=None"):
            w.add("b", np.ones(8), {"descriptors": np.ones((1, 4))})
    store = FeatureStore(str(tmp_path))
    assert store.global_descriptors().dtype == np.float16
    np.testing.assert_array_equal(store.global_descriptor("a"), np.arange(8))
    with pytest.raises(FeatureStoreError, match="no local features"):
        store.local_features("a")


def test_bad_input_is_rejected_with_the_id(tmp_path):
    w = FeatureStoreWriter(str(tmp_path), 8, 4)
    g, local = _features(0, 2)
    with pytest.raises(ValueError, match="'x'.*global.*shape"):
        w.add("x", np.ones(7), local)
    with pytest.raises(ValueError, match="'x'.*NaN"):
        w.add("x", np.full(8, np.nan), local)
    with pytest.raises(ValueError, match="'x'.*scales has 1 rows"):
        w.add("x", g, dict(local, scales=np.ones(1)))
    w.add("x", g, local)
    with pytest.raises(ValueError, match="'x' was already added"):
        w.add("x", g, local)
    w.close()


def test_failures_are_recorded_and_done(tmp_path):
    with FeatureStoreWriter(str(tmp_path), 8, 4, shard_size=2) as w:
        g, local = _features(0, 1)
        w.add("ok", g, local)
        w.add_failure("broken.jpg", "cannot decode")
        assert w.done_ids() == {"ok", "broken.jpg"}
    store = FeatureStore(str(tmp_path))
    assert store.ids == ["ok"]
    assert store.failures == [("broken.jpg", "cannot decode")]
    w = FeatureStoreWriter(str(tmp_path), 8, 4, shard_size=2)
    assert w.done_ids() == {"ok", "broken.jpg"}
    w.close()


def test_abandoned_writer_resumes_without_duplicates_or_losses(tmp_path):
    w = FeatureStoreWriter(str(tmp_path), 8, 4, shard_size=3)
    for i in range(7):  # two complete shards, one image in the third
        w.add(f"img{i}", *_features(i, i % 4))
    w._lock_file.close()  # simulate the process dying: lock gone, no close()
    assert sorted(p for p in os.listdir(tmp_path) if p.endswith(".tmp"))  # unfinished shard
    assert FeatureStore(str(tmp_path)).ids == [f"img{i}" for i in range(6)]
    w2 = FeatureStoreWriter(str(tmp_path), 8, 4, shard_size=3)
    assert w2.done_ids() == {f"img{i}" for i in range(6)}
    for i in range(10):
        if f"img{i}" not in w2.done_ids():
            w2.add(f"img{i}", *_features(i, i % 4))
    w2.close()
    store = FeatureStore(str(tmp_path))
    assert store.ids == [f"img{i}" for i in range(10)]
    for i in range(10):
        np.testing.assert_array_equal(
            store.local_features(f"img{i}")["attention"], _features(i, i % 4)[1]["attention"]
        )


_WRITER_SCRIPT = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from delg_tf.extraction.feature_store import FeatureStoreWriter
    w = FeatureStoreWriter(sys.argv[1], 8, 4, shard_size=5)
    done = w.done_ids()
    for i in range(int(sys.argv[2])):
        if f"img{i}" in done:
            continue
        rng = np.random.default_rng(i)
        w.add(f"img{i}", np.full(8, i, np.float32), {
            "descriptors": rng.normal(size=(3, 4)), "locations": np.zeros((3, 2)),
            "scales": np.ones(3), "attention": np.full(3, i)})
        print(i, flush=True)
        if sys.argv[3] == "slow" and i >= 12:
            time.sleep(60)
    w.close()
    """
)


def test_kill_9_writer_then_resume(tmp_path):
    store_dir = str(tmp_path / "store")
    script = tmp_path / "writer.py"
    script.write_text(_WRITER_SCRIPT)
    proc = subprocess.Popen(
        [sys.executable, str(script), store_dir, "20", "slow"], stdout=subprocess.PIPE, text=True
    )
    for line in proc.stdout:
        if line.strip() == "12":
            break
    time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = FeatureStore(store_dir)
    assert partial.ids == [f"img{i}" for i in range(10)] and not partial.complete
    subprocess.run(
        [sys.executable, str(script), store_dir, "20", "fast"], check=True, capture_output=True
    )
    store = FeatureStore(store_dir)
    assert store.ids == [f"img{i}" for i in range(20)] and store.complete
    np.testing.assert_array_equal(np.asarray(store.global_descriptors())[:, 0], np.arange(20))


def test_second_writer_is_locked_out(tmp_path):
    w = FeatureStoreWriter(str(tmp_path), 8, 4)
    with pytest.raises(FeatureStoreError, match="lock"):
        FeatureStoreWriter(str(tmp_path), 8, 4)
    w.close()


def test_resume_with_other_dims_is_an_error(tmp_path):
    _write(tmp_path, range(2))
    with pytest.raises(FeatureStoreError, match="global_dim=8.*16"):
        FeatureStoreWriter(str(tmp_path), 16, 4)


def test_errors_name_the_path(tmp_path):
    with pytest.raises(FeatureStoreError, match="does not exist"):
        FeatureStore(str(tmp_path / "nope"))
    with pytest.raises(FeatureStoreError, match="missing manifest"):
        FeatureStore(str(tmp_path))
    _write(tmp_path, range(4))
    store = FeatureStore(str(tmp_path))
    with pytest.raises(KeyError, match="unknown image id 'zzz'"):
        store.local_features("zzz")
    manifest = tmp_path / "manifest.json"
    text = manifest.read_text()
    manifest.write_text(text[: len(text) // 2])
    with pytest.raises(FeatureStoreError, match="manifest.json: corrupt manifest"):
        FeatureStore(str(tmp_path))
    manifest.write_text(text)
    (tmp_path / "shard-00001.global.npy").write_bytes(b"garbage")
    store = FeatureStore(str(tmp_path))
    with pytest.raises(FeatureStoreError, match="shard-00001.global.npy: missing or corrupt"):
        store.global_descriptor("img3")
    os.remove(tmp_path / "shard-00000.ids.json")
    with pytest.raises(FeatureStoreError, match="shard-00000.ids.json"):
        FeatureStore(str(tmp_path))


def test_manifest_format(tmp_path):
    _write(tmp_path, range(4))
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["format"] == "delg-feature-store" and manifest["format_version"] == 1
    assert manifest["global_dim"] == 8 and manifest["local_dim"] == 4
    assert manifest["num_images"] == 4
    assert manifest["shards"][0] == {
        "name": "shard-00000",
        "num_images": 3,
        "num_local_features": 3,
        "num_failures": 0,
    }


# -- the store's record (issue 12 item 2: a resume must never mix two exports or settings) --------

_RECORD = {
    "export": "tf-fingerprint:1/2/3/4",
    "image_scales": [0.5, 1.0],
    "global_scales_ind": [1],
    "attention_threshold": 2.5,
    "max_feature_num": 100,
    "max_image_size": 512,
    "global_dim": 8,
    "local_dim": 4,
    "global_dtype": "float32",
    "image_set": "query",
    "query_crop": True,
}
_OTHER_VALUES = {
    "export": "sha256:ab",
    "image_scales": [1.0],
    "global_scales_ind": [0],
    "attention_threshold": 2.75,
    "max_feature_num": 99,
    "max_image_size": 1024,
    "global_dim": 16,
    "local_dim": 2,
    "global_dtype": "float16",
    "image_set": "index",
    "query_crop": False,
}


def test_every_recorded_setting_refuses_a_resume_naming_it(tmp_path):
    with FeatureStoreWriter(str(tmp_path), 8, 4, record=_RECORD) as w:
        w.add("a", *_features(0, 2))
    before = (tmp_path / "manifest.json").read_bytes()
    assert json.loads(before)["record"] == _RECORD
    assert set(_OTHER_VALUES) == set(_RECORD)
    for key, value in _OTHER_VALUES.items():
        with pytest.raises(
            RecordMismatchError, match=f"extracted with {key}=.* this run has {key}="
        ):
            FeatureStoreWriter(str(tmp_path), 8, 4, record={**_RECORD, key: value})
        # Refused before anything is written: the manifest and the lock are as they were.
        assert (tmp_path / "manifest.json").read_bytes() == before, key
    with FeatureStoreWriter(str(tmp_path), 8, 4, record=dict(_RECORD)) as w:  # same: resumes
        assert w.done_ids() == {"a"}
        w.add("b", *_features(1, 1))
    assert FeatureStore(str(tmp_path)).ids == ["a", "b"]


def test_a_store_without_a_record_is_not_resumed_with_one(tmp_path):
    _write(tmp_path, range(2))  # as an older delg-extract wrote it
    with pytest.raises(RecordMismatchError, match="records no export or settings"):
        FeatureStoreWriter(str(tmp_path), 8, 4, record=_RECORD)
    empty = tmp_path / "empty"
    FeatureStoreWriter(str(empty), 8, 4).close()  # nothing in it yet: the record is adopted
    FeatureStoreWriter(str(empty), 8, 4, record=_RECORD).close()
    assert json.loads((empty / "manifest.json").read_text())["record"] == _RECORD


def test_a_retried_failure_is_superseded_by_its_new_entry(tmp_path):
    """A failure retried by a re-run (issue 12 item 6) leaves one entry per id: the newest."""
    with FeatureStoreWriter(str(tmp_path), 8, 4, shard_size=2) as w:
        w.add("ok", *_features(0, 1))
        w.add_failure("fixed", "cannot decode", "sha256:aa")
        w.add_failure("still", "cannot decode", "sha256:bb")
    w = FeatureStoreWriter(str(tmp_path), 8, 4, shard_size=2)
    assert w.recorded_failures() == {
        "fixed": ("cannot decode", "sha256:aa"),
        "still": ("cannot decode", "sha256:bb"),
    }
    with pytest.raises(ValueError, match="'ok' is not a failure to retry"):
        w.retry("ok")  # a stored image is never redone
    w.retry("fixed")
    w.retry("still")
    w.add("fixed", *_features(1, 2))
    w.add_failure("still", "cannot decode again", "sha256:cc")
    w.close()
    store = FeatureStore(str(tmp_path))
    assert store.ids == ["ok", "fixed"]
    assert store.failures == [("still", "cannot decode again")]
    assert store.manifest["num_failures"] == 1
    np.testing.assert_array_equal(store.local_features("fixed")["descriptors"].shape, [2, 4])
