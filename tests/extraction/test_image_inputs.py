import io
import os

import numpy as np
import pytest
from PIL import Image

from delg_tf.data.revisited_ground_truth import save_ground_truth_json
from delg_tf.extraction.image_inputs import (
    ImageLoadError,
    ImageRecord,
    folder_records,
    list_records,
    load_image,
    resize_image,
    revisited_records,
)


def save(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return str(path)


def test_folder_ids_are_relative_paths_without_extension(tmp_path):
    save(tmp_path / "b.png", np.zeros([12, 12, 3], np.uint8))
    save(tmp_path / "sub" / "a.jpg", np.zeros([12, 12, 3], np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    records = folder_records(str(tmp_path))
    assert [r.image_id for r in records] == ["b", "sub/a"]


def test_folder_duplicate_ids_rejected(tmp_path):
    save(tmp_path / "a.png", np.zeros([12, 12, 3], np.uint8))
    save(tmp_path / "a.jpg", np.zeros([12, 12, 3], np.uint8))
    with pytest.raises(ValueError, match="image id 'a'"):
        folder_records(str(tmp_path))


def test_list_refuses_escaping_paths(tmp_path):
    lst = tmp_path / "list.txt"
    lst.write_text("# comment\nx/one.jpg\n\ntwo.png\n")
    records = list_records(str(lst), images_dir="/data")
    assert [(r.image_id, r.path) for r in records] == [
        ("x/one", "/data/x/one.jpg"),
        ("two", "/data/two.png"),
    ]
    lst.write_text("ok.jpg\n../../etc/passwd\n")
    with pytest.raises(ValueError, match=r"list.txt:2.*leaves the image directory"):
        list_records(str(lst))
    lst.write_text("/abs/path.jpg\n")
    with pytest.raises(ValueError, match="absolute"):
        list_records(str(lst))


def test_resize_caps_longest_side_and_reports_factors():
    image = np.zeros([300, 2000, 3], np.uint8)
    resized, factors = resize_image(image, 1024)
    assert resized.shape == (154, 1024, 3)
    np.testing.assert_allclose(factors, [154 / 300, 1024 / 2000])
    same, ones = resize_image(np.zeros([100, 50, 3], np.uint8), 1024)
    assert same.shape == (100, 50, 3) and list(ones) == [1.0, 1.0]


def test_query_is_cropped_and_resized_as_if_full_image_was_capped(tmp_path):
    # Full image 200x400 (h x w); the query box is a 100x50 region with a known pattern.
    image = np.zeros([200, 400, 3], np.uint8)
    image[40:90, 100:200] = 255
    path = save(tmp_path / "q.png", image)
    record = ImageRecord("q", path, bbox=(99.6, 40.2, 200.4, 89.7))  # rounds to 100,40,200,90
    crop, factors = load_image(record, max_image_size=1024)
    assert crop.shape == (50, 100, 3) and crop.min() == 255  # exactly the white region
    np.testing.assert_array_equal(factors, [1, 1])
    # Cap 200 on the full image's longest side 400: factor 100/400, so the crop's cap is 50.
    small, factors = load_image(record, max_image_size=200)
    assert small.shape == (25, 50, 3)
    np.testing.assert_allclose(factors, [0.5, 0.5])


def test_revisited_records_take_bbx_for_queries_only(tmp_path):
    gt = {
        "imlist": ["all_souls_1", "radcliffe_2"],
        "qimlist": ["all_souls_1"],
        "gnd": [{"easy": [0], "hard": [], "junk": [1], "bbx": [1.0, 2.0, 30.0, 40.0]}],
    }
    gnd = str(tmp_path / "gnd_test.json")
    save_ground_truth_json(gnd, gt)
    queries = revisited_records(gnd, "/imgs", "query")
    assert queries == [ImageRecord("all_souls_1", "/imgs/all_souls_1.jpg", (1, 2, 30, 40))]
    index = revisited_records(gnd, "/imgs", "index")
    assert [r.bbox for r in index] == [None, None]
    with pytest.raises(ValueError, match="image_set"):
        revisited_records(gnd, "/imgs", "train")


def test_bad_images_name_the_file(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(ImageLoadError, match="bad.jpg"):
        load_image(ImageRecord("bad", str(bad)), 1024)
    with pytest.raises(ImageLoadError, match="missing.jpg"):
        load_image(ImageRecord("m", str(tmp_path / "missing.jpg")), 1024)
    tiny = save(tmp_path / "tiny.png", np.zeros([8, 40, 3], np.uint8))
    with pytest.raises(ImageLoadError, match="smaller than 10 px"):
        load_image(ImageRecord("t", tiny), 1024)


def _bad_folder(tmp_path):
    """A folder holding a good image, a FIFO, a device link, and links inside and outside."""
    folder = tmp_path / "photos"
    good = save(folder / "good.png", np.full([16, 16, 3], 200, np.uint8))
    os.mkfifo(folder / "fifo.jpg")
    outside = save(tmp_path / "elsewhere" / "secret.png", np.zeros([16, 16, 3], np.uint8))
    os.symlink(outside, folder / "outside.png")
    os.symlink("/dev/zero", folder / "device.jpg")
    os.symlink(good, folder / "inside.png")
    (folder / "sub").mkdir()
    os.symlink("../good.png", folder / "sub" / "relative_inside.png")
    return str(folder)


@pytest.mark.timeout(60)  # before the fix the FIFO blocked open() forever
def test_every_listing_refuses_fifos_devices_and_links_leaving_the_folder(tmp_path):
    # Issue 12 items 7 and 8 (classes: a non-regular file named like an image; a symlink whose
    # target lies outside the image folder), for folder, list and Revisited listings alike.
    folder = _bad_folder(tmp_path)
    names = ["good", "fifo", "outside", "device", "inside", "sub/relative_inside"]
    extension = {"fifo": ".jpg", "device": ".jpg"}
    (tmp_path / "list.txt").write_text(
        "\n".join(n + extension.get(n, ".png") for n in names) + "\n"
    )
    by_folder = {r.image_id: r for r in folder_records(folder)}
    by_list = {r.image_id: r for r in list_records(str(tmp_path / "list.txt"), folder)}
    assert sorted(by_folder) == sorted(by_list) == sorted(names)
    for records in (by_folder, by_list):
        for name in ("good", "inside", "sub/relative_inside"):
            image, _ = load_image(records[name], 1024)
            assert image.shape == (16, 16, 3)
        with pytest.raises(ImageLoadError, match=r"fifo.jpg: not a regular file"):
            load_image(records["fifo"], 1024)
        with pytest.raises(ImageLoadError, match=r"device.jpg: not a regular file"):
            load_image(records["device"], 1024)
        with pytest.raises(ImageLoadError, match=r"outside.png: a symlink to .*secret.png, out"):
            load_image(records["outside"], 1024)
    # A single image given by path (delg-visualize) has no folder, but never blocks either.
    with pytest.raises(ImageLoadError, match="not a regular file"):
        load_image(ImageRecord("x", os.path.join(folder, "fifo.jpg")), 1024)


def _tagged_jpeg(path, orientation: int):
    """A 40x20 (w x h) JPEG whose left half is white, tagged with an EXIF orientation."""
    pixels = np.zeros([20, 40, 3], np.uint8)
    pixels[:, :20] = 255
    exif = Image.Exif()
    exif[0x0112] = orientation
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, exif=exif.tobytes(), quality=95)
    return str(path)


def test_exif_orientation_is_applied_in_extraction_and_conversion(tmp_path):
    # Issue 12 (class: a tagged photo, e.g. a phone's "rotate 90"): both the extraction loader
    # and the TFRecord conversion store the image upright, so training and search agree.
    from delg_tf.conversion.image_sanitizer import sanitize_image_bytes

    path = _tagged_jpeg(tmp_path / "phone.jpg", 6)  # 6: rotate 90 clockwise to view
    image, _ = load_image(ImageRecord("phone", path), 1024)
    assert image.shape == (40, 20, 3)
    assert image[:5].mean() > 200 and image[-5:].mean() < 50  # the white half is now on top
    with open(path, "rb") as f:
        data = f.read()
    sanitized = sanitize_image_bytes(data, min_image_size=0)
    assert (sanitized.height, sanitized.width) == (40, 20)
    assert "EXIF orientation 6" in sanitized.conversion and sanitized.jpeg != data
    upright = np.asarray(Image.open(io.BytesIO(sanitized.jpeg)))
    assert upright.shape == (40, 20, 3) and upright[:5].mean() > 200
    # Untagged (orientation 1) JPEGs keep their bytes, as before.
    plain = _tagged_jpeg(tmp_path / "plain.jpg", 1)
    with open(plain, "rb") as f:
        data = f.read()
    assert sanitize_image_bytes(data, min_image_size=0).jpeg == data
