import numpy as np
from PIL import Image

from delg_tf.visualization.attention_map import (
    attention_figure,
    heatmap_extent,
    visualize_attention,
)
from tests.helpers.fake_export import export_brightness_model


def test_heatmap_extent_centres_cells_on_their_fields():
    # Field (8, 8, 0) on a 2x3 map: centres y 3.5, 11.5 and x 3.5, 11.5, 19.5.
    boxes = np.array([[8 * i, 8 * j, 8 * i + 7, 8 * j + 7] for i in range(2) for j in range(3)],
                     np.float32)  # fmt: skip
    assert heatmap_extent(boxes, (2, 3)) == (-0.5, 23.5, 15.5, -0.5)


def test_figure_has_heatmap_and_keypoints():
    image = np.zeros([32, 48, 3], np.uint8)
    boxes = np.array([[8 * i, 8 * j, 8 * i + 7, 8 * j + 7] for i in range(4) for j in range(6)],
                     np.float32)  # fmt: skip
    attention = np.random.default_rng(0).random([4, 6])
    figure = attention_figure(image, attention, boxes, np.array([[3.5, 3.5]]))
    left, right = figure.axes[:2]
    assert len(left.images) == 2 and right.collections[0].get_offsets().tolist() == [[3.5, 3.5]]


def test_png_through_an_export(tmp_path):
    model = str(tmp_path / "export")
    export_brightness_model(model, max_image_size=200)
    image = np.zeros([100, 300, 3], np.uint8)
    image[40:72, 100:164] = 255
    Image.fromarray(image).save(tmp_path / "in.png")
    out = str(tmp_path / "out.png")
    count = visualize_attention(model, str(tmp_path / "in.png"), out)
    assert count > 0
    with Image.open(out) as png:
        assert png.format == "PNG" and png.size[0] > 300
