"""delg-visualize: an image's attention and keypoints, or a query's matches, as a PNG.

  delg-visualize --model_path=/tmp/delg-export --image_path=photo.jpg --output_path=photo.png

  delg-visualize --query_features_dir=query_feats/ --index_features_dir=index_feats/ \\
      --query_id=q0 --images_dir=photos/ --top_k=5 --output_path=q0_matches.png
  delg-visualize ... --query_id=q0 --index_id=x7 --output_path=q0_x7.png

The second form ranks the query against the index store by global descriptor, re-ranks the top
--num_to_rerank by RANSAC inliers (as delg-evaluate does) and draws the query with its top
--top_k results (or the one --index_id) and a line per inlier with the first one drawn. Images
are found as <images_dir>/<id>.<ext> (any image extension); --query_images_dir defaults to
--images_dir.
"""

from __future__ import annotations

import os

from absl import flags, logging

from delg_tf.data.image_files import IMAGE_EXTENSIONS
from delg_tf.extraction.feature_store import FeatureStoreError
from delg_tf.extraction.image_inputs import MIN_IMAGE_SIDE, ImageLoadError, check_readable_file
from delg_tools import cli

FLAGS = flags.FLAGS
TOOL = "delg-visualize"
flags.DEFINE_string("model_path", None, "SavedModel written by delg-export (attention figure).")
flags.DEFINE_string("image_path", None, "Image to show (attention figure).")
flags.DEFINE_string("output_path", None, "PNG to write.")
flags.DEFINE_float("attention_threshold", None, "Override the export's attention threshold.")
flags.DEFINE_integer("max_image_size", None, "Override the export's max image size.")
flags.DEFINE_string("query_features_dir", None, "Query feature store (match figure).")
flags.DEFINE_string("index_features_dir", None, "Index feature store (match figure).")
flags.DEFINE_string("query_id", None, "Query id in --query_features_dir.")
flags.DEFINE_string("index_id", None, "Draw the query against this index image only.")
flags.DEFINE_integer("top_k", 5, "Results drawn after re-ranking (without --index_id).")
flags.DEFINE_integer("num_to_rerank", 100, "Results verified by RANSAC.")
flags.DEFINE_string("images_dir", None, "Folder of the index images (<id>.<ext>).")
flags.DEFINE_string("query_images_dir", None, "Folder of the query images (default: images_dir).")


def _image_finder(folders: dict[str, str]):
    """(id, role) -> the image file of that id, refusing what is missing or would hang."""

    def find(image_id: str, role: str) -> str:
        folder = folders[role]
        for extension in IMAGE_EXTENSIONS:
            for candidate in (extension, extension.upper()):
                path = os.path.join(folder, image_id + candidate)
                if os.path.lexists(path):
                    check_readable_file(path, folder)
                    return path
        raise cli.UsageError(
            f"--{'query_' if role == 'query' else ''}images_dir={folder}: no image for {role} "
            f"{image_id!r} ({image_id}.jpg, .png, ...)"
        )

    return find


def _match_figure() -> int:
    from delg_tf.visualization.match_figure import write_store_figure

    for name in ("index_features_dir", "query_id", "images_dir"):
        if not FLAGS[name].value:
            raise cli.UsageError(f"--query_features_dir needs --{name}")
    folders = {"index": FLAGS.images_dir, "query": FLAGS.query_images_dir or FLAGS.images_dir}
    for role, folder in folders.items():
        if not os.path.isdir(folder):
            flag = "query_images_dir" if folder == FLAGS.query_images_dir else "images_dir"
            raise cli.UsageError(f"--{flag}={folder} is not a directory ({role} images)")
    try:
        summary = write_store_figure(
            FLAGS.query_features_dir,
            FLAGS.index_features_dir,
            FLAGS.query_id,
            _image_finder(folders),
            FLAGS.output_path,
            top_k=FLAGS.top_k,
            index_id=FLAGS.index_id,
            num_to_rerank=FLAGS.num_to_rerank,
        )
    except KeyError as error:  # an id not in its store
        raise cli.UsageError(error.args[0]) from None
    except (FeatureStoreError, ValueError) as error:
        raise cli.UsageError(str(error)) from None
    logging.info("%s -> %s", summary, FLAGS.output_path)
    return cli.EXIT_OK


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise cli.UsageError(f"unexpected arguments: {argv[1:]}")
    if FLAGS.query_features_dir:
        return _match_figure()
    from delg_tf.visualization.attention_map import visualize_attention

    for name in ("model_path", "image_path"):
        if not FLAGS[name].value:
            raise cli.UsageError(f"--{name} is required (or --query_features_dir for matches)")
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
    cli.require_positive("top_k", "num_to_rerank")
    cli.run(
        main,
        tool=TOOL,
        module=__name__,
        required=["output_path"],
        user_errors=(ImageLoadError,),
    )


if __name__ == "__main__":
    run()
