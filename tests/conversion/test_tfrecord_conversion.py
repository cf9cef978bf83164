"""tfrecord_conversion: sharding, records, bad inputs, manifest, resume and refusal."""

import csv
import io
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from delg_tf.conversion import tfrecord_conversion as conversion
from delg_tf.conversion.tfrecord_conversion import ConversionItem, ConversionOptions
from delg_tf.data import example_schema as schema


def _image_file(path, seed, fmt="JPEG", mode="RGB", size=(40, 48)):
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).convert(mode).save(path, format=fmt)
    return str(path)


@pytest.fixture
def items(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    result = []
    for k in range(9):
        fmt = "PNG" if k % 4 == 1 else "JPEG"
        result.append(ConversionItem(f"img{k}", _image_file(images / f"{k}.x", k, fmt), k % 3))
    (images / "text.x").write_text("not an image")
    result.insert(4, ConversionItem("text", str(images / "text.x"), 1))
    result.insert(7, ConversionItem("gone", str(images / "gone.x"), 2))
    return result  # 11 items: 9 images (2 PNG) + 2 bad.


def _options(**overrides):
    values = dict(num_shards=3, min_image_size=16, jpeg_quality=90, num_workers=0)
    values.update(overrides)
    return ConversionOptions(show_progress=False, **values)


def _convert(splits, out, **overrides):
    identity = overrides.pop("identity", {"test": 1})
    return conversion.convert_to_tfrecords(splits, str(out), _options(**overrides), identity)


def _read_records(path):
    parsed = []
    for serialized in tf.data.TFRecordDataset(path):
        features = schema.parse_example(serialized)
        image = tf.io.decode_jpeg(features[schema.ENCODED])
        parsed.append(
            (
                features[schema.ID].numpy().decode(),
                int(features[schema.LABEL]),
                tuple(image.shape),
                (int(features[schema.HEIGHT]), int(features[schema.WIDTH])),
            )
        )
    return parsed


def _shard_bytes(out):
    return {
        name: (out / name).read_bytes()
        for name in sorted(os.listdir(out))
        if conversion._SHARD_RE.match(name)
    }


def test_shard_bounds_are_the_official_linspace_cut():
    assert conversion.shard_bounds(10, 3) == [(0, 3), (3, 6), (6, 10)]
    assert conversion.shard_bounds(2, 4) == [(0, 0), (0, 1), (1, 1), (1, 2)]
    assert conversion.shard_name("validation", 7, 128) == "validation-00007-of-00128"


def test_records_bad_inputs_and_manifest(tmp_path, items):
    out = tmp_path / "out"
    summary, bad = _convert({"train": items}, out)
    assert sorted(_shard_bytes(out)) == [f"train-0000{i}-of-00003" for i in range(3)]
    records = []
    for i in range(3):
        records += _read_records(str(out / f"train-0000{i}-of-00003"))
    # Plan order kept, bad inputs dropped; linspace cuts the 11 planned items at 0/3/7/11 and
    # the shards are [img0-2], [img3 text img4 img5], [gone img6-8].
    assert [r[0] for r in records] == [f"img{k}" for k in range(9)]
    assert [r[1] for r in records] == [k % 3 for k in range(9)]
    assert all(r[2] == (48, 40, 3) and r[3] == (48, 40) for r in records)
    assert summary["records"] == {"train": 9}
    assert summary["conversions"] == {"PNG/RGB": 2}
    assert summary["bad_inputs_by_reason"] == {"missing file": 1, "not an image": 1}
    rows = list(csv.reader(io.StringIO((out / "bad_inputs.csv").read_text())))
    assert rows[0] == ["id", "path", "reason"]
    assert [(r[0], r[2].split(" (")[0]) for r in rows[1:]] == [
        ("text", "not an image"),
        ("gone", "missing file"),
    ]
    assert [b.image_id for b in bad] == ["text", "gone"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    shards = manifest["splits"]["train"]["shards"]
    assert [shards[n]["records"] for n in sorted(shards)] == [3, 3, 3]
    for name, entry in shards.items():
        data = (out / name).read_bytes()
        assert entry["bytes"] == len(data)
        assert entry["sha256"] == __import__("hashlib").sha256(data).hexdigest()
    assert manifest["identity"]["test"] == 1 and manifest["identity"]["num_shards"] == 3


def test_test_records_have_no_label_and_empty_shards_are_written(tmp_path, items):
    out = tmp_path / "out"
    test_items = [ConversionItem(i.image_id, i.path, None) for i in items[:2]]
    _convert({"test": test_items}, out, num_shards=4)
    names = sorted(_shard_bytes(out))
    assert names == [f"test-0000{i}-of-00004" for i in range(4)]
    assert (out / names[0]).stat().st_size == 0  # linspace gives the first shard no item.
    labels = [r[1] for n in names for r in _read_records(str(out / n))]
    assert labels == [schema.NO_LABEL, schema.NO_LABEL]


def test_bytes_do_not_depend_on_worker_count(tmp_path, items):
    _convert({"train": items}, tmp_path / "a", num_workers=0)
    _convert({"train": items}, tmp_path / "b", num_workers=2)
    assert _shard_bytes(tmp_path / "a") == _shard_bytes(tmp_path / "b")


def test_resume_reuses_verified_shards_and_redoes_the_rest(tmp_path, items):
    out = tmp_path / "out"
    _convert({"train": items}, out)
    reference = _shard_bytes(out)
    # Simulate a crash: shard 1 was renamed but not yet listed, shard 2 is half written (.tmp),
    # shard 0 is complete and listed.
    manifest = json.loads((out / "manifest.json").read_text())
    del manifest["splits"]["train"]["shards"]["train-00001-of-00003"]
    del manifest["splits"]["train"]["shards"]["train-00002-of-00003"]
    manifest["status"] = "in_progress"
    (out / "manifest.json").write_text(json.dumps(manifest))
    os.replace(out / "train-00002-of-00003", out / "train-00002-of-00003.tmp")
    with open(out / "train-00002-of-00003.tmp", "r+b") as f:
        f.truncate(10)
    (out / "bad_inputs.csv").unlink()
    os.utime(out / "train-00000-of-00003", ns=(1, 1))

    summary, bad = _convert({"train": items}, out)
    assert summary["shards_reused"] == 1 and summary["shards_written"] == 2
    assert (out / "train-00000-of-00003").stat().st_mtime_ns == 1  # Not rewritten.
    assert not (out / "train-00002-of-00003.tmp").exists()
    assert _shard_bytes(out) == reference
    # Bad inputs of reused shards come from the manifest: none lost.
    assert [b.image_id for b in bad] == ["text", "gone"]


def test_a_corrupted_listed_shard_is_rewritten(tmp_path, items):
    out = tmp_path / "out"
    _convert({"train": items}, out)
    reference = _shard_bytes(out)
    data = bytearray((out / "train-00001-of-00003").read_bytes())
    data[20] ^= 0xFF
    (out / "train-00001-of-00003").write_bytes(bytes(data))
    summary, _ = _convert({"train": items}, out)
    assert summary["shards_reused"] == 2 and summary["shards_written"] == 1
    assert _shard_bytes(out) == reference


def test_different_flags_or_inputs_refuse_unless_overwrite(tmp_path, items):
    out = tmp_path / "out"
    _convert({"train": items}, out)
    with pytest.raises(conversion.ResumeMismatchError, match="seed: None -> 5"):
        _convert({"train": items}, out, identity={"test": 1, "seed": 5})
    with pytest.raises(conversion.ResumeMismatchError, match="num_shards: 3 -> 2"):
        _convert({"train": items}, out, num_shards=2)
    with pytest.raises(conversion.ResumeMismatchError, match="plan_sha256"):
        _convert({"train": items[::-1]}, out)
    summary, _ = _convert({"train": items}, out, num_shards=2, overwrite=True)
    assert sorted(_shard_bytes(out)) == ["train-00000-of-00002", "train-00001-of-00002"]
    assert summary["shards_reused"] == 0


def test_foreign_shards_and_broken_manifest_are_not_touched(tmp_path, items):
    out = tmp_path / "out"
    out.mkdir()
    (out / "train-00000-of-00128").write_bytes(b"official")
    with pytest.raises(conversion.OutputDirectoryError, match="no manifest.json"):
        _convert({"train": items}, out)
    assert (out / "train-00000-of-00128").read_bytes() == b"official"
    (out / "train-00000-of-00128").unlink()
    (out / "manifest.json").write_text("{not json")
    with pytest.raises(conversion.OutputDirectoryError, match="--overwrite"):
        _convert({"train": items}, out)
    (out / "keep.txt").write_text("user file")
    _convert({"train": items}, out, overwrite=True)
    assert (out / "keep.txt").read_text() == "user file"


def test_a_skipped_image_fixed_later_is_picked_up_and_an_unchanged_one_is_not(tmp_path, items):
    """Issue 12 item 6: the retry rule of delg-extract. A rerun rewrites the shard of a skipped
    image whose file changed (the missing one created, the corrupt one replaced); a shard whose
    skipped files are unchanged is reused without decoding them again."""
    out = tmp_path / "out"
    _convert({"train": items}, out)
    stamps = {n: (out / n).stat().st_mtime_ns for n in _shard_bytes(out)}
    summary, bad = _convert({"train": items}, out)  # nothing changed: every shard reused
    assert summary["shards_reused"] == 3 and [b.image_id for b in bad] == ["text", "gone"]
    assert {n: (out / n).stat().st_mtime_ns for n in _shard_bytes(out)} == stamps

    gone = next(item for item in items if item.image_id == "gone")
    _image_file(gone.path, 99)  # shard 2 = [gone img6-8]
    summary, bad = _convert({"train": items}, out)
    assert summary["shards_reused"] == 2 and summary["shards_written"] == 1
    assert [b.image_id for b in bad] == ["text"]  # text.x is still not an image
    assert (out / "train-00000-of-00003").stat().st_mtime_ns == stamps["train-00000-of-00003"]
    ids = [r[0] for r in _read_records(str(out / "train-00002-of-00003"))]
    assert ids == ["gone", "img6", "img7", "img8"]
    assert summary["records"] == {"train": 10}


def test_a_changed_plan_is_refused_saying_the_images_changed(tmp_path, items):
    out = tmp_path / "out"
    _convert({"train": items}, out)
    with pytest.raises(conversion.ResumeMismatchError, match="a missing image was added"):
        _convert({"train": items[:-1]}, out)
