"""gldv2_csv: GLDv2 CSV reading, bad rows listed not fatal, missing columns fatal; relabelling."""

import pytest

from delg_tf.conversion import gldv2_csv
from delg_tf.data.relabeling import contiguous_relabeling, relabeling_csv_text


def _write(tmp_path, name, text, encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return str(path)


def _reasons(entries):
    return [(bad.image_id, bad.reason) for bad in entries.bad_inputs]


def test_train_csv_reads_ids_and_labels_and_lists_bad_rows(tmp_path):
    path = _write(
        tmp_path,
        "train.csv",
        "id,url,landmark_id\n"
        "aaa1,http://a,7\n"
        "bbb2,http://b,x7\n"  # non-integer label
        "ccc3,http://c\n"  # missing field
        "../etc,http://d,1\n"  # traversal
        "dd/d4,http://d,1\n"  # path separator
        "aaa1,http://a2,9\n"  # duplicate id
        "\n"
        'eee5,"http://e,3\n'  # unterminated quote: this row only
        "fff6,http://f,-2\n"  # negative label
        "ggg7, http://g , 3 \n",
    )
    entries = gldv2_csv.read_train_csv(path)
    assert entries.ids == ["aaa1", "ggg7"]
    assert entries.labels == [7, 3]
    assert _reasons(entries) == [
        ("bbb2", "non-integer label (train.csv line 3: 'x7')"),
        ("", "malformed CSV row (train.csv line 4: expected 3 fields, got 2)"),
        ("../etc", "id contains a path separator (train.csv line 5)"),
        ("dd/d4", "id contains a path separator (train.csv line 6)"),
        ("aaa1", "duplicate id (train.csv line 7; first seen at train.csv line 2)"),
        ("", "malformed CSV row (train.csv line 9: unexpected end of data)"),
        ("fff6", "non-integer label (train.csv line 10: '-2')"),
    ]
    assert all(bad.path == "" for bad in entries.bad_inputs)


def test_dot_dot_without_separator_is_rejected(tmp_path):
    path = _write(tmp_path, "test.csv", "id\n..\nab..cd\nok\n")
    entries = gldv2_csv.read_test_csv(path)
    assert entries.ids == ["ok"] and entries.labels is None
    assert [reason for _, reason in _reasons(entries)] == [
        "id contains '..' (test.csv line 2)",
        "id contains '..' (test.csv line 3)",
    ]


def test_byte_order_mark_and_invalid_utf8(tmp_path):
    path = _write(tmp_path, "train.csv", b"\xef\xbb\xbfid,landmark_id\nabc,1\nd\xffe,2\n")
    entries = gldv2_csv.read_train_csv(path)
    assert entries.ids == ["abc"]
    assert _reasons(entries) == [("", "invalid UTF-8 in CSV row (train.csv line 3)")]


@pytest.mark.parametrize(
    "reader, header, column",
    [
        (gldv2_csv.read_train_csv, "id,url\n", "landmark_id"),
        (gldv2_csv.read_train_csv, "url,landmark_id\n", "id"),
        (gldv2_csv.read_train_clean_csv, "landmark_id,ids\n", "images"),
        (gldv2_csv.read_test_csv, "image,url\n", "id"),
    ],
)
def test_missing_column_names_the_column_and_the_file(tmp_path, reader, header, column):
    path = _write(tmp_path, "some.csv", header + "a,b\n")
    with pytest.raises(gldv2_csv.CsvFormatError) as error:
        reader(path)
    assert f"missing required column '{column}'" in str(error.value)
    assert path in str(error.value)


def test_missing_or_empty_file_is_fatal(tmp_path):
    with pytest.raises(gldv2_csv.CsvFormatError, match="cannot open CSV file"):
        gldv2_csv.read_train_csv(str(tmp_path / "absent.csv"))
    with pytest.raises(gldv2_csv.CsvFormatError, match="empty CSV file"):
        gldv2_csv.read_train_csv(_write(tmp_path, "empty.csv", "\n\n"))


def test_clean_csv_expands_image_lists(tmp_path):
    path = _write(
        tmp_path,
        "train_clean.csv",
        "landmark_id,images\n"
        "20,a1 a2  a3\n"
        "5,b1\n"
        "oops,c1 c2\n"  # non-integer label: both ids listed
        "7,a2 d1\n"  # a2 already in class 20
        "8,\n",
    )
    entries = gldv2_csv.read_train_clean_csv(path)
    assert entries.ids == ["a1", "a2", "a3", "b1", "d1"]
    assert entries.labels == [20, 20, 20, 5, 7]
    assert _reasons(entries) == [
        ("c1", "non-integer label (train_clean.csv line 4: 'oops')"),
        ("c2", "non-integer label (train_clean.csv line 4: 'oops')"),
        ("a2", "duplicate id (train_clean.csv line 5; first seen at train_clean.csv line 2)"),
        ("", "no image ids (train_clean.csv line 6)"),
    ]


def test_relabeling_is_sorted_by_original_label_and_written_as_official():
    relabeling = contiguous_relabeling([20, 20, 5, 7, 100, 5])
    assert relabeling == {5: 0, 7: 1, 20: 2, 100: 3}
    assert list(relabeling) == [5, 7, 20, 100]
    assert relabeling_csv_text(relabeling) == "new_label,old_label\n0,5\n1,7\n2,20\n3,100\n"
    # Numeric, not string, order for GLDv2 ids; folder names sort as strings.
    assert list(contiguous_relabeling([10, 9])) == [9, 10]
    assert contiguous_relabeling(["b", "a,c"]) == {"a,c": 0, "b": 1}
    assert relabeling_csv_text({"a,c": 0}) == 'new_label,old_label\n0,"a,c"\n'
