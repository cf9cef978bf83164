"""delg-visualize: an image with its attention heatmap and selected keypoints, as a PNG.

delg-visualize --model_path=/tmp/delg-export --image_path=photo.jpg --output_path=photo.png
"""

from __future__ import annotations

import os

from absl import flags, logging

from delg_tf.extraction.image_inputs import MIN_IMAGE_SIDE, ImageLoadError, check_readable_file
from delg_tf.visualization.attention_map import visualize_attention
from delg_tools import cli

FLAGS = flags.FLAGS
TOOL = "delg-visualize"
flags.DEFINE_string("model_path", None, "SavedModel written by delg-export.")
flags.DEFINE_string("image_path", None, "Image to show.")
flags.DEFINE_string("output_path", None, "PNG to write.")
flags.DEFINE_float("attention_threshold", None, "Override the export's attention threshold.")
flags.DEFINE_integer("max_image_size", None, "Override the export's max image size.")


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise cli.UsageError(f"unexpected arguments: {argv[1:]}")
    # Before loading the model: a FIFO would block the read forever.
    check_readable_file(FLAGS.image_path)
    if not os.path.isdir(FLAGS.model_path):
        raise cli.UsageError(f"--model_path={FLAGS.model_path} is not a SavedModel directory")
    count = visualize_attention(
        FLAGS.model_path,
        FLAGS.image_path,
        FLAGS.output_path,
        attention_threshold=FLAGS.attention_threshold,
        max_image_size=FLAGS.max_image_size,
    )
    logging.info("%d keypoints drawn -> %s", count, FLAGS.output_path)
    return cli.EXIT_OK


def run() -> None:
    cli.require_non_negative("attention_threshold")
    cli.require_range("max_image_size", MIN_IMAGE_SIDE, 1 << 16)
    cli.run(
        main,
        tool=TOOL,
        module=__name__,
        required=["model_path", "image_path", "output_path"],
        user_errors=(ImageLoadError,),
    )


if __name__ == "__main__":
    run()
