"""Tiny DELG models in the three SavedModel forms extraction accepts, all with the same weights.

The network (`TinyNet`): normalise (x - 128) / 128 as the official export, then an 8x8 / stride 8
conv whose fixed kernel averages each colour channel over a cell (receptive field 8, stride 8,
padding 0), then three 1x1 heads on that [h, w, 3] map:
  attention = softplus(2 * (r + g + b))      (about 6 on a white cell, 0.0025 on a black one),
  local descriptors = W_local (3 -> 4),
  global = mean over cells of relu(W_g1 (3 -> 8)), then a dense 8 -> 8 with bias.

- `save_tf1_model`: a released-style TF1 SavedModel (tf.compat.v1 graph, variables, no
  signatures) with the official tensor names, its selection done with
  `tf.image.non_max_suppression(iou=1.0)` as the official graph does.
- `save_official_tf2_model`: an official-TF2-style export: a tf.Module whose `serving_default`
  has exactly the official inputs and outputs, and no settings asset.
- `save_delg_tf_export`: our export of the same network (delg-export's `save_module`).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from delg_tf.export.export_settings import ExportSettings
from delg_tf.export.exporter import save_module

CELL = 8
LOCAL_DIM = 4
GLOBAL_DIM = 8


def tiny_weights(seed: int = 0) -> dict[str, np.ndarray]:
    """The network's weights (float32)."""
    rng = np.random.default_rng(seed)
    pool = np.zeros([CELL, CELL, 3, 3], np.float32)
    for c in range(3):
        pool[:, :, c, c] = 1.0 / (CELL * CELL)
    return {
        "pool": pool,
        "attention": np.full([1, 1, 3, 1], 2.0, np.float32),
        "attention_bias": np.zeros([1], np.float32),
        "local": rng.normal(size=[1, 1, 3, LOCAL_DIM]).astype(np.float32),
        "global_1": rng.normal(size=[1, 1, 3, GLOBAL_DIM]).astype(np.float32),
        "global_2": rng.normal(size=[GLOBAL_DIM, GLOBAL_DIM]).astype(np.float32),
        "global_2_bias": rng.normal(size=[GLOBAL_DIM]).astype(np.float32),
    }


def tiny_net(images: tf.Tensor, w: dict) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """images float [1, h, w, 3] normalised -> (global [1, D], attention [1, h', w', 1],
    local [1, h', w', d])."""
    cells = tf.nn.conv2d(images, w["pool"], strides=CELL, padding="VALID")
    attention = tf.nn.softplus(
        tf.nn.conv2d(cells, w["attention"], 1, "VALID") + w["attention_bias"]
    )
    local = tf.nn.conv2d(cells, w["local"], 1, "VALID")
    pooled = tf.reduce_mean(tf.nn.relu(tf.nn.conv2d(cells, w["global_1"], 1, "VALID")), [1, 2])
    return tf.matmul(pooled, w["global_2"]) + w["global_2_bias"], attention, local


def official_pyramid(
    image, scales, max_feature_num, abs_thres, global_scales_ind, w, net=None,
    field=(CELL, CELL, 0), local_dim=LOCAL_DIM, global_dim=GLOBAL_DIM,
):  # fmt: skip
    """The official export's computation, written independently of delg_tf's pyramid.

    Args:
      image, scales, max_feature_num, abs_thres, global_scales_ind: the official inputs.
      w: `tiny_net`'s weights (ignored with `net`).
      net: Another network, normalised images [1, h, w, 3] -> (global [1, D], attention
        [1, h', w', 1], local [1, h', w', d]), with receptive `field` (size, stride, padding).

    Returns (boxes [N, 4], features [N, d], scales [N], scores [N, 1], global [G, D]).
    """
    net = net or (lambda images: tiny_net(images, w))
    size_rf, stride, padding = (float(v) for v in field)
    normalized = (tf.cast(image, tf.float32) - 128.0) / 128.0
    num = tf.size(scales)

    def body(i, boxes_ta, feats_ta, scales_ta, scores_ta, global_ta):
        scale = scales[i]
        size = tf.cast(tf.round(tf.cast(tf.shape(normalized)[:2], tf.float32) * scale), tf.int32)
        resized = tf.image.resize(normalized[tf.newaxis], size, method="bilinear")
        global_desc, attention, local = net(resized)
        height, width = tf.shape(attention)[1], tf.shape(attention)[2]
        x, y = tf.meshgrid(tf.range(width), tf.range(height))
        cells = tf.cast(tf.reshape(tf.stack([y, x], axis=2), [-1, 2]), tf.float32)
        # Official CalculateReceptiveBoxes: stride * cell + [-p, -p, -p + rf - 1, -p + rf - 1].
        bias = [-padding, -padding, size_rf - 1.0 - padding, size_rf - 1.0 - padding]
        boxes = tf.concat([cells, cells], 1) * stride + bias
        scores = tf.reshape(attention, [-1])
        keep = tf.reshape(tf.where(scores >= abs_thres), [-1])
        kept = tf.gather(scores, keep)
        return (
            i + 1,
            boxes_ta.write(i, tf.gather(boxes, keep) / scale),
            feats_ta.write(i, tf.gather(tf.reshape(local, [-1, local_dim]), keep)),
            scales_ta.write(i, tf.ones_like(kept) / scale),
            scores_ta.write(i, kept),
            global_ta.write(i, global_desc[0]),
        )

    def array(shape):
        return tf.TensorArray(tf.float32, size=num, infer_shape=False, element_shape=shape)

    _, boxes_ta, feats_ta, scales_ta, scores_ta, global_ta = tf.while_loop(
        lambda i, *_: i < num,
        body,
        (0, array([None, 4]), array([None, local_dim]), array([None]), array([None]),
         array([global_dim])),
    )  # fmt: skip
    boxes, scores = boxes_ta.concat(), scores_ta.concat()
    # NMS at IoU 1.0 suppresses nothing: the top max_feature_num by score (official graph).
    keep = tf.image.non_max_suppression(
        boxes, scores, tf.minimum(max_feature_num, tf.size(scores)), iou_threshold=1.0
    )
    return (
        tf.gather(boxes, keep),
        tf.gather(feats_ta.concat(), keep),
        tf.gather(scales_ta.concat(), keep),
        tf.gather(scores, keep)[:, tf.newaxis],
        tf.gather(global_ta.stack(), global_scales_ind),
    )


OUTPUT_NAMES = ("boxes", "features", "scales", "scores", "global_descriptors")


def official_placeholders() -> tuple:
    """The five input placeholders of a released DELG graph, by their official names."""
    v1 = tf.compat.v1
    return (
        v1.placeholder(tf.uint8, [None, None, 3], name="input_image"),
        v1.placeholder(tf.float32, [None], name="input_scales"),
        v1.placeholder(tf.int32, [], name="input_max_feature_num"),
        v1.placeholder(tf.float32, [], name="input_abs_thres"),
        v1.placeholder(tf.int32, [None], name="input_global_scales_ind"),
    )


def save_tf1_model(path: str, weights: dict | None = None, drop_outputs: tuple = ()) -> None:
    """A released-style TF1 SavedModel: official tensor names, variables, no signatures.

    Args:
      path: New SavedModel directory.
      weights: `tiny_weights()` by default.
      drop_outputs: Output names to leave out (a DELF-only model lacks global_descriptors).
    """
    weights = tiny_weights() if weights is None else weights
    graph = tf.Graph()
    with graph.as_default():
        v1 = tf.compat.v1
        inputs = official_placeholders()
        variables = {
            k: v1.get_variable(k, initializer=tf.constant(v), use_resource=True)
            for k, v in weights.items()
        }
        outputs = official_pyramid(*inputs, variables)
        for name, tensor in zip(OUTPUT_NAMES, outputs, strict=True):
            if name not in drop_outputs:
                tf.identity(tensor, name=name)
        with v1.Session(graph=graph) as session:
            session.run(v1.global_variables_initializer())
            builder = v1.saved_model.Builder(path)
            builder.add_meta_graph_and_variables(session, [tf.saved_model.SERVING])
            builder.save()


class OfficialTf2Module(tf.Module):
    """An official-TF2-style export: `serving_default` with exactly the official signature."""

    def __init__(self, weights: dict):
        super().__init__()
        self.weights = {k: tf.Variable(v, name=k) for k, v in weights.items()}

    @tf.function(
        input_signature=(
            tf.TensorSpec([None, None, 3], tf.uint8, name="input_image"),
            tf.TensorSpec([None], tf.float32, name="input_scales"),
            tf.TensorSpec([], tf.int32, name="input_max_feature_num"),
            tf.TensorSpec([], tf.float32, name="input_abs_thres"),
            tf.TensorSpec([None], tf.int32, name="input_global_scales_ind"),
        )
    )
    def serve(self, input_image, input_scales, input_max_feature_num, input_abs_thres,
              input_global_scales_ind):  # fmt: skip
        outputs = official_pyramid(
            input_image, input_scales, input_max_feature_num, input_abs_thres,
            input_global_scales_ind, self.weights,
        )  # fmt: skip
        return dict(zip(OUTPUT_NAMES, outputs, strict=True))


def save_official_tf2_model(path: str, weights: dict | None = None) -> None:
    module = OfficialTf2Module(tiny_weights() if weights is None else weights)
    tf.saved_model.save(module, path, signatures={"serving_default": module.serve})


class TinyDelgModel(tf.Module):
    """The same network with DelgModel's call contract, for `save_module`."""

    def __init__(self, weights: dict):
        super().__init__()
        self.weights = {k: tf.Variable(v, name=k) for k, v in weights.items()}

    def __call__(self, images, training=False):
        global_desc, attention, local = tiny_net(images, self.weights)
        return {"global_descriptor": global_desc, "attention": attention,
                "local_descriptors": local}  # fmt: skip

    def extraction_outputs(self, images, training=False):
        # What the export calls on a DelgModel (its forward pass without training-only parts).
        return self(images, training=training)


def save_delg_tf_export(path: str, threshold: float, weights: dict | None = None,
                        **settings) -> ExportSettings:  # fmt: skip
    settings = ExportSettings(
        backbone="tiny_net",
        block3_strides=True,
        input_normalization="delf",
        global_dim=GLOBAL_DIM,
        local_dim=LOCAL_DIM,
        receptive_field={"size": CELL, "stride": CELL, "padding": 0},
        attention_threshold=threshold,
        **settings,
    )
    save_module(TinyDelgModel(tiny_weights() if weights is None else weights), settings, path)
    return settings
