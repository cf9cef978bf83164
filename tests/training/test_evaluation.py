import tensorflow as tf

from delg_tf.training.evaluation import Validation


class _RowsAsLogits:
    """Stands in for DelgModel: global logits are the input rows, attention logits reversed."""

    def __call__(self, images, training):
        return {"global_descriptor": images, "attention_logits": tf.reverse(images, axis=[-1])}

    def global_logits(self, global_descriptor, training):
        return global_descriptor


def test_accuracy_counts_only_labels_in_range_over_all_batches():
    rows = [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1], [1, 0, 0], [0, 0, 1]]
    labels = [0, 1, 0, 2, -1, 7]  # the last two are not counted
    # global arg-max: 0 1 2 2 -> rows 0, 1, 3 right; attention arg-max: 2 1 0 0 -> rows 1, 2.
    strategy = tf.distribute.get_strategy()
    dataset = tf.data.Dataset.from_tensor_slices(
        (tf.constant(rows, tf.float32), tf.constant(labels, tf.int64))
    ).batch(4)  # a full batch and a partial one
    validation = Validation(
        _RowsAsLogits(), strategy, strategy.experimental_distribute_dataset(dataset), 3
    )
    assert validation() == {"global_accuracy": 0.75, "attention_accuracy": 0.5, "examples": 4.0}
