"""An image with its attention heatmap and selected keypoints, as a PNG (matplotlib, Agg)."""

from __future__ import annotations

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from delg_tf.extraction.extractor import ExtractionOptions, SavedModelExtractor, settings_if_any
from delg_tf.extraction.image_inputs import ImageRecord, load_image


def heatmap_extent(boxes: np.ndarray, shape: tuple[int, int]) -> tuple[float, float, float, float]:
    """imshow extent (left, right, bottom, top) placing each cell at its receptive-field centre.

    Args:
      boxes: [h * w, 4] (ymin, xmin, ymax, xmax) cell boxes, row-major, in image pixels.
      shape: (h, w) of the attention map.
    """
    h, w = shape
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2.0
    ys, xs = centres[::w, 0], centres[:w, 1]
    step_y = ys[1] - ys[0] if h > 1 else boxes[0, 2] - boxes[0, 0]
    step_x = xs[1] - xs[0] if w > 1 else boxes[0, 3] - boxes[0, 1]
    return (xs[0] - step_x / 2, xs[-1] + step_x / 2, ys[-1] + step_y / 2, ys[0] - step_y / 2)


def attention_figure(
    image: np.ndarray,
    attention: np.ndarray,
    boxes: np.ndarray,
    keypoints: np.ndarray,
    title: str = "",
) -> Figure:
    """Draws the image, the attention map over it, and the keypoints.

    Args:
      image: uint8 [H, W, 3].
      attention: float [h, w] attention map.
      boxes: float [h * w, 4] cell boxes in image pixels.
      keypoints: float [N, 2] (y, x) in image pixels.
      title: Figure title.

    Returns:
      A matplotlib Figure with an Agg canvas.
    """
    height, width = image.shape[:2]
    figure = Figure(figsize=(12, 6 * height / max(width, 1) + 0.6), dpi=100)
    FigureCanvasAgg(figure)
    left, right = figure.add_subplot(1, 2, 1), figure.add_subplot(1, 2, 2)
    left.imshow(image)
    heat = left.imshow(
        attention, cmap="jet", alpha=0.5, interpolation="bilinear",
        extent=heatmap_extent(boxes, attention.shape),
    )  # fmt: skip
    figure.colorbar(heat, ax=left, fraction=0.03, label="attention")
    left.set_title("attention (scale 1)")
    right.imshow(image)
    if len(keypoints):
        right.scatter(keypoints[:, 1], keypoints[:, 0], s=6, c="yellow", edgecolors="black",
                      linewidths=0.3)  # fmt: skip
    right.set_title(f"{len(keypoints)} keypoints")
    for axis in (left, right):
        axis.set_xlim(0, width)
        axis.set_ylim(height, 0)
        axis.axis("off")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure


def visualize_attention(
    model_path: str,
    image_path: str,
    output_path: str,
    attention_threshold: float | None = None,
    max_image_size: int | None = None,
) -> int:
    """Writes the attention/keypoint PNG of one image through an export.

    Args:
      model_path: delg-export SavedModel, official TF2 export or released TF1 model.
      image_path: The image.
      output_path: PNG to write.
      attention_threshold: Override the export's threshold (needed if it is not calibrated).
      max_image_size: Override the export's max image size.

    Returns:
      The number of keypoints drawn.
    """
    options = ExtractionOptions.from_settings(
        settings_if_any(model_path),
        attention_threshold=attention_threshold,
        max_image_size=max_image_size,
    )
    extractor = SavedModelExtractor(model_path, options)
    image, factors = load_image(ImageRecord("image", image_path), options.max_image_size)
    _, local = extractor(image, factors)
    attention, boxes = extractor.attention_map(image, 1.0)
    # The heatmap is computed on the resized image: map its boxes to the resized image's pixels
    # and the keypoints (original pixels) to the same frame.
    keypoints = local["locations"] * factors[np.newaxis]
    figure = attention_figure(
        image, attention, boxes, keypoints,
        title=f"{image_path} (threshold {options.attention_threshold:g})",
    )  # fmt: skip
    figure.savefig(output_path, format="png")
    return len(keypoints)
