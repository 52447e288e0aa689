"""The parts: engines offline, region rules, plain images, the recipe section."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from medscrub import MedscrubError
from medscrub.context import RunConfig
from medscrub.pipeline import run_batch
from medscrub.pseudonyms import Secret
from medscrub.recipe import RecipeError, parse_recipe
from medscrub_ocr.detect import merge
from medscrub_ocr.engines import PaddleDetector, bundled_models, default_model
from medscrub_ocr.image import verify as image_verify
from medscrub_ocr.options import OcrOptions
from medscrub_ocr.regions import Device, boxes_for, load_rules
from medscrub_ocr.synthetic import render
from medscrub_ocr.views import boxes_text


def test_model_ships_inside_a_package_and_runs_without_network(monkeypatch):
    model = default_model()
    assert model in bundled_models()
    assert "site-packages" in str(model) or "dist-packages" in str(model) or ".egg" in str(model)

    def refuse(*args, **kwargs):
        raise AssertionError("the text detector tried to open a network connection")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    detector = PaddleDetector(model)
    frame = render(5, width=320, height=240, strings=2, over_anatomy=0)
    assert detector.detect(frame.pixels)


def test_packaged_rules_match_the_devices_they_were_taken_from():
    rules = load_rules()
    aloka = Device("ALOKA CO., LTD.", "SSD-4000", 480, 640)
    assert boxes_for(rules, aloka) == [(0, 0, 640, 26)]
    assert boxes_for(rules, Device("ALOKA CO., LTD.", "SSD-4000", 600, 800)) == []
    assert boxes_for(rules, Device("Other", "SSD-4000", 480, 640)) == []


def test_site_rules_add_devices_and_bad_files_say_where(tmp_path):
    site = tmp_path / "site.toml"
    site.write_text('[[device]]\nmanufacturer = "Acme"\nboxes = [[0, 0, 900, 20]]\n')
    assert boxes_for(load_rules(site), Device("ACME Imaging", "X1", 100, 200)) == [(0, 0, 200, 20)]
    bad = tmp_path / "bad.toml"
    bad.write_text('[[device]]\nmanufacturer = "Acme"\nboxes = [[10, 0, 5, 20]]\n')
    with pytest.raises(MedscrubError, match=r"bad.toml: device.0: .*box \[10, 0, 5, 20\]"):
        load_rules(bad)
    with pytest.raises(MedscrubError, match="cannot read"):
        load_rules(tmp_path / "missing.toml")


def test_merge_keeps_overlaps_apart_and_drops_contained_boxes():
    assert merge([(0, 0, 10, 10), (2, 2, 5, 5), (8, 8, 20, 20), (0, 0, 10, 10)]) == [(0, 0, 10, 10), (8, 8, 20, 20)]


def test_boxes_text_gives_runs_of_equal_frames():
    a, b = [(1, 2, 3, 4)], [(5, 6, 7, 8), (1, 1, 2, 2)]
    assert boxes_text([a, a, a, b, [], a]) == "0-2:1,2,3,4;3:5,6,7,8 1,1,2,2;5:1,2,3,4"


def test_recipe_section_is_checked():
    sections = {"ocr": OcrOptions}
    recipe = parse_recipe({"ocr": {"engine": "tesseract", "fill": "background", "scales": [0.5, 0.25]}}, sections)
    assert recipe.section("ocr").strategy().scales == (0.5, 0.25)
    with pytest.raises(RecipeError, match="ocr.engnie: unknown key"):
        parse_recipe({"ocr": {"engnie": "x"}}, sections)
    with pytest.raises(RecipeError, match="ocr.engine"):
        parse_recipe({"ocr": {"engine": "paddleocr"}}, sections)


def _photo(path: Path) -> None:
    frame = render(11, width=320, height=240, strings=3, over_anatomy=0)
    image = Image.fromarray(frame.pixels)
    if path.suffix == ".png":
        info = PngImagePlugin.PngInfo()
        info.add_text("Author", "Johanna Doemeister")
        image.save(path, pnginfo=info)
    else:
        exif = Image.Exif()
        exif[0x013B] = "Johanna Doemeister"  # Artist
        exif[0x0132] = "2021:03:04 10:11:12"
        image.save(path, exif=exif, quality=95) if path.suffix == ".jpg" else image.save(path, exif=exif)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".tif"])
def test_plain_images_lose_metadata_and_text(tmp_path, suffix, detector):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    _photo(src / f"scan{suffix}")
    summary = run_batch(RunConfig(None, Secret(b"s" * 32), src, out, cleaners=("erase-text",), plugins=("ocr",)))
    (result,) = summary.results
    assert result.status == "done", result.reason
    assert result.actions.get("pixels") == 1 and result.actions.get("remove", 0) >= 1
    written = out / f"scan{suffix}"
    assert b"Doemeister" not in written.read_bytes()
    assert image_verify(written) == []
    with Image.open(written) as im:
        assert suffix == ".tif" or not im.getexif()
        assert "Author" not in im.info
        pixels = np.asarray(im.convert("RGB"))
    assert pixels.shape == (240, 320, 3)
    assert result.previews


def test_image_without_erase_text_is_still_stripped(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    _photo(src / "photo.png")
    summary = run_batch(RunConfig(None, Secret(b"s" * 32), src, out, plugins=("ocr",)))
    assert summary.results[0].status == "done"
    assert b"Doemeister" not in (out / "photo.png").read_bytes()


def test_only_flagged_leaves_images_whose_header_says_no(tmp_path):
    import shutil

    import pydicom
    from pydicom.data import get_testdata_file

    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    shutil.copy(get_testdata_file("JPGLosslessP14SV1_1s_1f_8b.dcm"), src / "a.dcm")  # says NO, shows text
    recipe = tmp_path / "recipe.toml"
    recipe.write_text("[ocr]\nonly_flagged = true\n")
    summary = run_batch(RunConfig(recipe, Secret(b"s" * 32), src, out, cleaners=("erase-text",),
                                  plugins=("ocr", "dicom")))
    result = summary.results[0]
    assert result.status == "done" and "pixels" not in result.actions
    assert pydicom.dcmread(out / "a.dcm").file_meta.TransferSyntaxUID == pydicom.dcmread(
        src / "a.dcm").file_meta.TransferSyntaxUID
