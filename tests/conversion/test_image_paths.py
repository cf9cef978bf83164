"""image_paths: GLDv2 layout lookup that can never leave the image directory."""

import os

import pytest

from delg_tf.conversion.image_paths import find_gldv2_image, id_problem, image_root_from_flag


@pytest.mark.parametrize(
    "flag, root",
    [
        ("/data/gldv2/train/*/*/*/", "/data/gldv2/train"),
        ("/data/gldv2/train/", "/data/gldv2/train"),
        ("/data/gldv2/train", "/data/gldv2/train"),
        ("rel/train/[0-9a-f]/*/*", "rel/train"),
        ("*", "."),
    ],
)
def test_image_root_from_official_glob(flag, root):
    assert image_root_from_flag(flag) == root


def test_layout_flat_and_missing(tmp_path):
    nested = tmp_path / "a" / "b" / "c"
    nested.mkdir(parents=True)
    (nested / "abcdef.jpg").write_bytes(b"x")
    (tmp_path / "flat1.png").write_bytes(b"x")
    assert find_gldv2_image(str(tmp_path), "abcdef") == (str(nested / "abcdef.jpg"), None)
    assert find_gldv2_image(str(tmp_path), "flat1") == (str(tmp_path / "flat1.png"), None)
    assert find_gldv2_image(str(tmp_path), "zz") == (None, "missing file")
    (tmp_path / "d" / "i" / "r").mkdir(parents=True)
    (tmp_path / "d" / "i" / "r" / "dir.jpg").mkdir()
    assert find_gldv2_image(str(tmp_path), "dir") == (None, "not a regular file")


def test_ids_and_symlinks_cannot_escape_the_root(tmp_path):
    root = tmp_path / "train"
    root.mkdir()
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(b"outside")
    assert find_gldv2_image(str(root), "../secret") == (None, "id contains a path separator")
    assert find_gldv2_image(str(root), "..") == (None, "id contains '..'")
    assert find_gldv2_image(str(root), str(secret)[:-4])[1] == "id contains a path separator"
    os.symlink(secret, root / "link.jpg")
    outside = (None, "path resolves outside the image directory")
    assert find_gldv2_image(str(root), "link") == outside
    # A symlinked root is fine: containment is checked against the resolved root.
    os.symlink(root, tmp_path / "alias")
    (root / "inside.jpg").write_bytes(b"x")
    assert find_gldv2_image(str(tmp_path / "alias"), "inside")[1] is None


def test_id_problem():
    assert id_problem("0123456789abcdef") is None
    assert id_problem("") == "empty id"
    assert id_problem("a\\b") == "id contains a path separator"
    assert id_problem("a\x00b") == "id contains a control character"
