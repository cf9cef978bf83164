import os

from absl import flags

from delg_tf.common.flags_record import FLAGS_RECORD, serialize_flags, write_flags_record


def _flag_values() -> flags.FlagValues:
    values = flags.FlagValues()
    flags.DEFINE_string("name", "x", "", flag_values=values)
    flags.DEFINE_integer("count", 3, "", flag_values=values)
    flags.DEFINE_boolean("verify", False, "", flag_values=values)
    flags.DEFINE_list("scales", ["0.5", "1.0"], "", flag_values=values)
    values(["prog", "--count=7", "--verify"])
    return values


def test_serialize_flags_writes_flagfile_lines_in_the_given_order():
    values = _flag_values()
    text = serialize_flags(values, ["verify", "count", "scales", "name"])
    assert text == "--verify\n--count=7\n--scales=0.5,1.0\n--name=x\n"
    again = flags.FlagValues()
    flags.DEFINE_integer("count", 0, "", flag_values=again)
    flags.DEFINE_boolean("verify", False, "", flag_values=again)
    # The record is a flagfile: parsing its lines gives the same values back.
    again(["prog", *serialize_flags(values, ["count", "verify"]).split()])
    assert again.count == 7 and again.verify is True


def test_write_flags_record_replaces_the_file_whole(tmp_path):
    path = write_flags_record(str(tmp_path), "--a=1\n")
    assert path == str(tmp_path / FLAGS_RECORD) and FLAGS_RECORD == "flags.txt"
    write_flags_record(str(tmp_path), "--a=2\n")
    assert (tmp_path / "flags.txt").read_text() == "--a=2\n"
    assert os.listdir(tmp_path) == ["flags.txt"]  # no temporary file left behind
