import math

import numpy as np
import pytest

from delg_tf.training import train_step
from delg_tf.training.errors import LabelRangeError, NonFiniteLossError


def _chunk(healthy=True, **last):
    scalars = {name: 1.0 for name in train_step.SCALARS}
    scalars["bad_labels"] = 0.0
    scalars.update(last)
    return train_step.ChunkResult(
        steps=1,
        sums=dict(scalars),
        last=scalars,
        healthy=healthy,
        stop=False,
        attention=np.zeros((1, 2, 2, 1)),
        images=np.zeros((1, 8, 8, 3)),
        seconds=0.1,
    )


def test_healthy_chunk_passes():
    train_step.raise_if_unhealthy(_chunk(), 7, 4, None)


def test_bad_labels_name_the_step_count_and_last_checkpoint():
    with pytest.raises(LabelRangeError) as error:
        train_step.raise_if_unhealthy(_chunk(False, bad_labels=3.0), 7, 4, "/l/ckpt-5")
    message = str(error.value)
    assert message.startswith("Step 7: 3 training labels outside [0, --num_classes=4).")
    assert message.endswith("the last good checkpoint is /l/ckpt-5.")


def test_non_finite_terms_are_named_in_reporting_order():
    chunk = _chunk(False, total=math.nan, global_ce=math.inf)
    with pytest.raises(NonFiniteLossError, match=r"Non-finite global_ce, total at step 9 \("):
        train_step.raise_if_unhealthy(chunk, 9, 4, None)
