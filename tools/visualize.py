"""delg-visualize: an image with its attention heatmap and selected keypoints, as a PNG.

delg-visualize --model_path=/tmp/delg-export --image_path=photo.jpg --output_path=photo.png
"""

from __future__ import annotations

from absl import app, flags, logging

from delg_tf.visualization.attention_map import visualize_attention

FLAGS = flags.FLAGS
flags.DEFINE_string("model_path", None, "SavedModel written by delg-export.")
flags.DEFINE_string("image_path", None, "Image to show.")
flags.DEFINE_string("output_path", None, "PNG to write.")
flags.DEFINE_float("attention_threshold", None, "Override the export's attention threshold.")
flags.DEFINE_integer("max_image_size", None, "Override the export's max image size.")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    count = visualize_attention(
        FLAGS.model_path,
        FLAGS.image_path,
        FLAGS.output_path,
        attention_threshold=FLAGS.attention_threshold,
        max_image_size=FLAGS.max_image_size,
    )
    logging.info("%d keypoints drawn -> %s", count, FLAGS.output_path)


def run() -> None:
    # Required here, not at import: tests import several binaries into one process, and an
    # import-time requirement would make every other binary's flag parsing fail.
    flags.mark_flags_as_required(["model_path", "image_path", "output_path"])
    app.run(main)


if __name__ == "__main__":
    run()
