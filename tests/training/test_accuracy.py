import tensorflow as tf

from delg_tf.training.accuracy import count_correct, labels_in_range


def test_labels_in_range_and_masked_counts():
    labels = tf.constant([0, 2, 3, -1, 1])
    in_range = labels_in_range(labels, 3)
    assert in_range.numpy().tolist() == [True, True, False, False, True]
    # Arg-max classes 0, 2, 0, 0, 2: the first two are right; the 3rd and 4th labels are invalid.
    logits = tf.constant([[5.0, 0, 0], [0, 1, 2], [3, 0, 0], [1, 0, 0], [0, 0, 1]])
    safe_labels = tf.clip_by_value(labels, 0, 2)  # 0, 2, 2, 0, 1
    assert float(count_correct(logits, safe_labels)) == 3.0  # rows 0, 1 and 3
    assert float(count_correct(logits, safe_labels, in_range)) == 2.0  # row 3 is masked out
