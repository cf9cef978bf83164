"""image_folder: one sub-folder per class, sorted labels, sanitized ids, nothing read outside."""

import os

import pytest

from delg_tf.conversion.image_folder import image_id_from_relative_path, list_image_folder


def _touch(path, data=b"img"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_classes_ids_and_skips(tmp_path):
    root = tmp_path / "photos"
    _touch(root / "tower" / "b.jpg")
    _touch(root / "tower" / "a.PNG")
    _touch(root / "tower" / "night shots" / "x 1.jpeg")
    _touch(root / "Bridge" / "c.webp")
    _touch(root / "Bridge" / "c.jpg")  # Same id "Bridge/c": c.jpg sorts first and is kept.
    _touch(root / "Bridge" / "notes.txt")
    _touch(root / "Bridge" / ".DS_Store")
    _touch(root / ".hidden" / "h.jpg")
    _touch(root / "loose.jpg")
    (root / "empty").mkdir()
    _touch(tmp_path / "outside.jpg")
    os.symlink(tmp_path / "outside.jpg", root / "tower" / "escape.jpg")

    listing = list_image_folder(str(root))
    assert listing.class_names == ["Bridge", "empty", "tower"]  # Sorted by code point.
    assert listing.ids == ["Bridge/c", "tower/a", "tower/b", "tower/night_shots/x_1"]
    assert listing.labels == [0, 2, 2, 2]
    assert listing.paths[0] == str(root / "Bridge" / "c.jpg")
    assert [(b.image_id, b.reason.split(" (")[0]) for b in listing.bad_inputs] == [
        ("loose", "not in a class folder"),
        ("Bridge/c", "duplicate id"),
        ("tower/escape", "path resolves outside the image directory"),
    ]
    assert listing.bad_inputs[1].path == str(root / "Bridge" / "c.webp")
    assert listing.ignored_files == 3  # .hidden/, notes.txt, .DS_Store


def test_id_sanitizing():
    assert image_id_from_relative_path("Eiffel Tower/img 1.JPG") == "Eiffel_Tower/img_1"
    assert image_id_from_relative_path("Köln/Dom;v2.png") == "Köln/Dom_v2"
    assert image_id_from_relative_path("a/b.c/d.e.jpg") == "a/b.c/d.e"


def test_not_a_directory(tmp_path):
    with pytest.raises(NotADirectoryError, match="--image_root"):
        list_image_folder(str(tmp_path / "missing"))
