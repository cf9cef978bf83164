"""Not a test: times extraction through a TF1-style model versus our export of the same network.

  .venv/bin/python tests/extraction/time_official_kinds.py --net=tiny --images=20
  .venv/bin/python tests/extraction/time_official_kinds.py --net=resnet50 --images=3 \
      --height=384 --width=512

`tiny`: the tests' tiny network (`official_models.py`) as a TF1 graph and as our export.
`resnet50`: an untrained R50 DelgModel exported by `save_module`, and the same model frozen
(weights as constants) into a released-style TF1 graph: the official pyramid around the frozen
network, with the official tensor names and no signatures. Both run the 7 official scales
through `SavedModelExtractor` (threshold -inf, top 1000), one image at a time, after one untimed
warm-up image; the median per-image wall time and process CPU time (all threads) are printed,
with the load average (the CPU time is the figure that survives a shared machine).
"""

import argparse
import os
import statistics
import tempfile
import time

import numpy as np
import tensorflow as tf

from delg_tf.export.exporter import save_module, settings_for_model  # noqa: E402
from delg_tf.extraction.extractor import ExtractionOptions, SavedModelExtractor  # noqa: E402
from tests.helpers.official_models import (  # noqa: E402
    official_placeholders,
    official_pyramid,
    save_delg_tf_export,
    save_tf1_model,
)


def save_r50_pair(root: str) -> tuple[str, str]:
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    from delg_tf.models import DelgModel

    tf.keras.utils.set_random_seed(0)
    model = DelgModel(num_classes=10, backbone="resnet50")
    model(tf.zeros([1, 64, 64, 3]), training=False)
    ours = os.path.join(root, "ours_r50")
    settings = settings_for_model(model, attention_threshold=0.0)
    save_module(model, settings, ours)

    @tf.function(input_signature=[tf.TensorSpec([1, None, None, 3], tf.float32)])
    def net(images):
        out = model(images, training=False)
        return out["global_descriptor"], out["attention"], out["local_descriptors"]

    frozen = convert_variables_to_constants_v2(net.get_concrete_function())
    graph_def = frozen.graph.as_graph_def()
    input_name = frozen.inputs[0].name
    output_names = [t.name for t in frozen.outputs]
    field = settings.receptive_field

    tf1 = os.path.join(root, "tf1_r50")
    graph = tf.Graph()
    with graph.as_default():
        v1 = tf.compat.v1
        inputs = official_placeholders()

        def frozen_net(images):
            return tf.graph_util.import_graph_def(
                graph_def, input_map={input_name: images}, return_elements=output_names,
                name="delg",
            )  # fmt: skip

        outputs = official_pyramid(
            *inputs, None, net=frozen_net,
            field=(field["size"], field["stride"], field["padding"]),
            local_dim=settings.local_dim, global_dim=settings.global_dim,
        )  # fmt: skip
        names = ("boxes", "features", "scales", "scores", "global_descriptors")
        for name, tensor in zip(names, outputs, strict=True):
            tf.identity(tensor, name=name)
        with v1.Session(graph=graph) as session:
            builder = v1.saved_model.Builder(tf1)
            builder.add_meta_graph_and_variables(session, [tf.saved_model.SERVING])
            builder.save()
    return tf1, ours


def time_extractor(path: str, images: list[np.ndarray]) -> tuple[str, float, float]:
    options = ExtractionOptions.from_settings(None, attention_threshold=float("-inf"))
    extractor = SavedModelExtractor(path, options)
    factors = np.ones(2, np.float32)
    extractor(images[0], factors)  # warm-up: tracing, kernel selection
    times, cpu = [], []
    for image in images[1:]:
        start, start_cpu = time.perf_counter(), time.process_time()
        extractor(image, factors)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return extractor.model_kind, statistics.median(times), statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--net", choices=["tiny", "resnet50"], default="tiny")
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--height", type=int, default=768)
    parser.add_argument("--width", type=int, default=1024)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    images = [
        rng.integers(0, 256, [args.height, args.width, 3], dtype=np.uint8)
        for _ in range(args.images + 1)
    ]
    with tempfile.TemporaryDirectory() as root:
        if args.net == "tiny":
            tf1, ours = os.path.join(root, "tf1"), os.path.join(root, "ours")
            save_tf1_model(tf1)
            save_delg_tf_export(ours, threshold=0.0)
        else:
            tf1, ours = save_r50_pair(root)
        for path in (tf1, ours):
            kind, seconds, cpu_seconds = time_extractor(path, images)
            print(
                f"{args.net} {kind}: {seconds * 1000:.1f} ms/image wall, "
                f"{cpu_seconds * 1000:.1f} ms/image process CPU (median of {args.images}, "
                f"{args.height}x{args.width}, 7 scales; load average {os.getloadavg()[0]:.1f})"
            )


if __name__ == "__main__":
    main()
