from PIL import Image

from delg_tf.conversion.image_folder import list_image_folder
from delg_tf.data.image_files import IMAGE_EXTENSIONS, is_image_file
from delg_tf.extraction.image_inputs import folder_records


def test_is_image_file_by_extension_in_any_case():
    assert is_image_file("a.JPG") and is_image_file("dir.x/b.ppm") and is_image_file("c.TiFf")
    assert not is_image_file("notes.txt") and not is_image_file("jpg") and not is_image_file("a.")


def test_a_folder_that_converts_is_a_folder_that_extracts(tmp_path):
    # One file per extension, in one class folder: conversion and extraction list the same ids.
    folder = tmp_path / "landmark"
    folder.mkdir()
    for number, extension in enumerate(IMAGE_EXTENSIONS):
        mode = {".pbm": "1", ".pgm": "L"}.get(extension, "RGB")
        Image.new(mode, (12, 12)).save(folder / f"img{number}{extension}")
    (folder / "readme.txt").write_text("not an image")
    extracted = sorted(record.image_id for record in folder_records(str(tmp_path)))
    assert len(extracted) == len(IMAGE_EXTENSIONS) and "landmark/img8" in extracted  # the .ppm
    assert sorted(list_image_folder(str(tmp_path)).ids) == extracted
