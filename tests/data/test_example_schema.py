"""The Example schema round-trips and reads records laid out by the official tool."""

import tensorflow as tf

from delg_tf.data import example_schema as schema


def _official_style_example(label=None):
    # Written field by field as the official research/delf/delf/python/training/
    # build_image_dataset.py does.
    def b(v):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v]))

    def i(v):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[v]))

    feature = {
        "image/height": i(4),
        "image/width": i(6),
        "image/colorspace": b(b"RGB"),
        "image/channels": i(3),
        "image/format": b(b"JPEG"),
        "image/id": b(b"0123abcd"),
        "image/encoded": b(b"\xff\xd8jpeg"),
    }
    if label is not None:
        feature["image/class/label"] = i(label)
    return tf.train.Example(features=tf.train.Features(feature=feature))


def test_official_record_parses_here():
    parsed = schema.parse_example(_official_style_example(label=7).SerializeToString())
    assert parsed[schema.ID].numpy() == b"0123abcd"
    assert parsed[schema.LABEL].numpy() == 7
    assert parsed[schema.HEIGHT].numpy() == 4 and parsed[schema.WIDTH].numpy() == 6
    assert parsed[schema.ENCODED].numpy() == b"\xff\xd8jpeg"


def test_official_test_record_without_label_gets_no_label():
    parsed = schema.parse_example(_official_style_example().SerializeToString())
    assert parsed[schema.LABEL].numpy() == schema.NO_LABEL


def test_our_record_has_exactly_the_official_fields():
    ours = schema.make_example("0123abcd", b"\xff\xd8jpeg", height=4, width=6, label=7)
    assert ours == _official_style_example(label=7)
    unlabeled = schema.make_example("0123abcd", b"\xff\xd8jpeg", height=4, width=6)
    assert unlabeled == _official_style_example()
