"""Tests for the Revisited Oxford/Paris ground-truth readers (pickle, .mat, JSON)."""

import builtins
import os
import pickle

import numpy as np
import pytest
import scipy.io

from delg_tf.data import revisited_ground_truth as rgt

IMLIST = ["all_souls_000001", "all_souls_000002", "radcliffe_000003", "magdalen_000004"]
QIMLIST = ["all_souls_000013", "radcliffe_000029"]


def _raw_lists():
    # What a revisitop gnd file looks like with plain lists (0-based indices).
    return {
        "imlist": list(IMLIST),
        "qimlist": list(QIMLIST),
        "gnd": [
            {"easy": [0, 1], "hard": [2], "junk": [], "bbx": [10.5, 20.0, 110.0, 220.25]},
            {"easy": [], "hard": [3], "junk": [0, 1], "bbx": [0.0, 0.0, 50.0, 60.0]},
        ],
    }


def _raw_numpy():
    raw = _raw_lists()
    for entry in raw["gnd"]:
        for key in ("easy", "hard", "junk"):
            entry[key] = np.asarray(entry[key], dtype=np.int64)
        entry["bbx"] = np.asarray(entry["bbx"], dtype=np.float64)
    return raw


def _assert_expected(gt):
    assert gt["imlist"] == IMLIST
    assert gt["qimlist"] == QIMLIST
    assert len(gt["gnd"]) == 2
    np.testing.assert_array_equal(gt["gnd"][0]["easy"], [0, 1])
    np.testing.assert_array_equal(gt["gnd"][0]["hard"], [2])
    np.testing.assert_array_equal(gt["gnd"][0]["junk"], np.zeros(0))
    np.testing.assert_array_equal(gt["gnd"][1]["hard"], [3])
    np.testing.assert_array_equal(gt["gnd"][1]["junk"], [0, 1])
    np.testing.assert_allclose(gt["gnd"][0]["bbx"], [10.5, 20.0, 110.0, 220.25])
    for entry in gt["gnd"]:
        for key in ("easy", "hard", "junk"):
            assert entry[key].dtype == np.int64 and entry[key].ndim == 1
        assert entry["bbx"].dtype == np.float64 and entry["bbx"].shape == (4,)


def _write(path, data: bytes):
    with open(path, "wb") as f:
        f.write(data)
    return str(path)


class _SystemCall:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _Eval:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (builtins.eval, (f"open({self.marker!r}, 'w').close()",))


@pytest.mark.parametrize("payload_cls", [_SystemCall, _Eval])
def test_malicious_pickle_is_refused_and_never_runs(tmp_path, payload_cls):
    marker = tmp_path / "pwned"
    raw = _raw_lists()
    raw["gnd"][0]["easy"] = payload_cls(str(marker))
    path = _write(tmp_path / "gnd_roxford5k.pkl", pickle.dumps(raw))
    with pytest.raises(rgt.GroundTruthError, match="refusing global") as info:
        rgt.load_ground_truth(path)
    assert path in str(info.value)
    assert not marker.exists()


def test_object_dtype_array_is_refused(tmp_path):
    # Object arrays are how numpy pickles smuggle arbitrary objects; their dtype is refused.
    raw = _raw_lists()
    raw["imlist"] = np.asarray(IMLIST, dtype=object)
    path = _write(tmp_path / "gnd.pkl", pickle.dumps(raw, protocol=2))
    with pytest.raises(rgt.GroundTruthError, match="refusing numpy dtype"):
        rgt.load_ground_truth(path)


def test_structured_dtype_array_is_refused(tmp_path):
    raw = _raw_lists()
    raw["gnd"][0]["bbx"] = np.zeros(1, dtype=[("x", "f8"), ("o", "O")])
    path = _write(tmp_path / "gnd.pkl", pickle.dumps(raw))
    with pytest.raises(rgt.GroundTruthError, match="refusing numpy dtype"):
        rgt.load_ground_truth(path)


def test_array_subclass_is_refused(tmp_path):
    raw = _raw_lists()
    raw["gnd"][0]["easy"] = np.ma.masked_array([0, 1], mask=[False, True])
    path = _write(tmp_path / "gnd.pkl", pickle.dumps(raw))
    with pytest.raises(rgt.GroundTruthError, match="refusing"):
        rgt.load_ground_truth(path)


def test_truncated_pickle_is_a_clear_error(tmp_path):
    path = _write(tmp_path / "gnd.pkl", pickle.dumps(_raw_lists())[:40])
    with pytest.raises(rgt.GroundTruthError, match="gnd.pkl"):
        rgt.load_ground_truth(path)


def test_pickle_with_lists_loads(tmp_path):
    path = _write(tmp_path / "gnd_rparis6k.pkl", pickle.dumps(_raw_lists(), protocol=3))
    _assert_expected(rgt.load_ground_truth(path))


@pytest.mark.parametrize("protocol", [0, 2, 3, 4, 5])
def test_pickle_with_numpy_arrays_loads(tmp_path, protocol):
    # Protocols 2 (_codecs.encode), 3/4 (_reconstruct) and 5 (_frombuffer) use different
    # reconstructors; numpy scalars (`scalar`) are mixed in too.
    raw = _raw_numpy()
    raw["gnd"][1]["bbx"] = [np.float64(0.0), np.float32(0.0), np.float64(50.0), np.int64(60)]
    raw["qimlist"] = np.asarray(QIMLIST)  # a numpy str array
    path = _write(tmp_path / "gnd.pkl", pickle.dumps(raw, protocol=protocol))
    _assert_expected(rgt.load_ground_truth(path))


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda r: r["gnd"][1]["junk"].append(4), r"query 1 \('radcliffe_000029'\) field 'junk'"),
        (lambda r: r["gnd"][0]["easy"].append(-1), r"query 0 .* field 'easy': index -1"),
        (lambda r: r["gnd"][0].update(bbx=[1.0, 2.0, 3.0]), r"query 0 .* field 'bbx'"),
        (lambda r: r["gnd"][0].update(bbx=[5.0, 2.0, 3.0, 9.0]), r"field 'bbx'.*x2>x1"),
        (lambda r: r["gnd"][0].update(hard=[1.5]), r"field 'hard': indices must be integers"),
        (lambda r: r["gnd"][0].update(hard=["2"]), r"field 'hard': expected numbers"),
        (lambda r: r["gnd"][1].pop("hard"), r"query 1 .* missing field 'hard'"),
        (lambda r: r["gnd"].pop(), r"'gnd' has 1 entries but 'qimlist' has 2"),
        (lambda r: r.pop("imlist"), r"missing key 'imlist'"),
        (lambda r: r["imlist"].append("../../etc/passwd"), r"imlist\[4\].*escapes"),
        (lambda r: r["qimlist"].__setitem__(0, "/abs/name"), r"qimlist\[0\].*escapes"),
        (lambda r: r["imlist"].append(IMLIST[0]), r"'imlist' lists image 'all_souls_000001'"),
    ],
)
def test_invalid_structure_names_file_query_and_field(tmp_path, mutate, message):
    raw = _raw_lists()
    mutate(raw)
    path = _write(tmp_path / "gnd_bad.pkl", pickle.dumps(raw))
    with pytest.raises(rgt.GroundTruthError, match=message) as info:
        rgt.load_ground_truth(path)
    assert "gnd_bad.pkl" in str(info.value)


def test_json_round_trip(tmp_path):
    path = str(tmp_path / "gnd.json")
    gt = rgt.validate_ground_truth(_raw_numpy())
    rgt.save_ground_truth_json(path, gt)
    _assert_expected(rgt.load_ground_truth(path))
    # The atomic write leaves no temporary file behind.
    assert sorted(os.listdir(tmp_path)) == ["gnd.json"]


def test_json_save_refuses_invalid_and_keeps_old_file(tmp_path):
    path = str(tmp_path / "gnd.json")
    rgt.save_ground_truth_json(path, _raw_lists())
    bad = _raw_lists()
    bad["gnd"][0]["easy"] = [99]
    with pytest.raises(rgt.GroundTruthError, match="index 99"):
        rgt.save_ground_truth_json(path, bad)
    _assert_expected(rgt.load_ground_truth(path))


def test_json_wrong_format_is_refused(tmp_path):
    path = tmp_path / "other.json"
    path.write_text('{"format": "something_else", "imlist": []}')
    with pytest.raises(rgt.GroundTruthError, match="not a ground truth"):
        rgt.load_ground_truth(str(path))


def _write_official_mat(path, raw):
    # The official structure: cell arrays of names and a 1xN struct array `gnd` whose fields
    # hold 1-based indices (MATLAB) as double row vectors.
    fields = [("easy", "O"), ("hard", "O"), ("junk", "O"), ("bbx", "O")]
    gnd = np.zeros((1, len(raw["gnd"])), dtype=fields)
    for q, entry in enumerate(raw["gnd"]):
        for key in ("easy", "hard", "junk"):
            gnd[0, q][key] = np.asarray(entry[key], dtype=np.float64).reshape(1, -1) + 1
        gnd[0, q]["bbx"] = np.asarray(entry["bbx"], dtype=np.float64).reshape(1, 4)
    cell = lambda names: np.asarray(names, dtype=object).reshape(-1, 1)
    scipy.io.savemat(
        path, {"imlist": cell(raw["imlist"]), "qimlist": cell(raw["qimlist"]), "gnd": gnd}
    )


def test_mat_round_trip_converts_to_zero_based(tmp_path):
    path = str(tmp_path / "gnd_roxford5k.mat")
    _write_official_mat(path, _raw_lists())
    _assert_expected(rgt.load_ground_truth(path))


def test_mat_with_zero_index_is_out_of_range(tmp_path):
    # A 0 in a 1-based file becomes -1: reported, not silently wrapped.
    raw = _raw_lists()
    raw["gnd"][1]["junk"] = [-1]
    path = str(tmp_path / "gnd.mat")
    _write_official_mat(path, raw)
    with pytest.raises(rgt.GroundTruthError, match=r"query 1 .* field 'junk': index -1"):
        rgt.load_ground_truth(path)


def test_unknown_extension(tmp_path):
    with pytest.raises(rgt.GroundTruthError, match="unknown extension '.txt'"):
        rgt.load_ground_truth(str(tmp_path / "gnd.txt"))
