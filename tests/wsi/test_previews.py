"""The QA report's pictures of slide labels and macros: what the output
shows, never the patient, unless internal pictures are asked for."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

import slides  # noqa: E402

from medscrub.context import RunConfig  # noqa: E402
from medscrub.pipeline import run_batch  # noqa: E402
from medscrub.pseudonyms import Secret  # noqa: E402

pytest.importorskip("tifffile")
pytest.importorskip("imagecodecs")
pytesseract = pytest.importorskip("pytesseract")
from PIL import Image  # noqa: E402

try:
    pytesseract.get_tesseract_version()
except Exception:  # pragma: no cover - the Debian package tesseract-ocr is missing
    pytest.skip("tesseract is not installed (Debian: apt-get install tesseract-ocr)", allow_module_level=True)


def run(tmp_path: Path, recipe: str) -> tuple[dict, Path]:
    inp = tmp_path / "in"
    if not inp.exists():
        inp.mkdir()
        slides.write_svs(inp / "case.svs", macro=slides.slide_photo(label_end="left"))
    out = tmp_path / f"out{len(list(tmp_path.glob('out*')))}"
    recipe_path = tmp_path / f"{out.name}.toml"
    recipe_path.write_text(recipe)
    summary = run_batch(RunConfig(recipe_path, Secret(b"p" * 32), inp, out, plugins=("wsi",)))
    (record,) = [json.loads(line) for line in (out / ".medscrub" / "manifest.jsonl").read_text().splitlines()]
    assert summary.exit_code == 0, record
    return record, out / ".medscrub"


def picture(state: Path, name: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO((state / name).read_bytes())).convert("L"))


def words(image: np.ndarray) -> str:
    return pytesseract.image_to_string(Image.fromarray(image))


def test_label_and_macro_pictures_show_the_output_not_the_patient(tmp_path):
    record, state = run(tmp_path, '[wsi]\nlabel = "replace"\nmacro = "blank-label"\n')
    titles = [p["title"] for p in record["previews"]]
    assert any("label image" in t and "pseudonym label" in t for t in titles), titles
    assert any("macro image" in t and "painted over" in t for t in titles), titles
    assert all("before" not in p for p in record["previews"])  # the inputs show the patient
    for entry in record["previews"]:
        text = words(picture(state, entry["after"]))
        assert not [w for w in ("Kowalczyk", "Marianna", slides.MRN) if w in text], (entry["title"], text)
    label = next(p for p in record["previews"] if "label image" in p["title"])
    assert "IDENTIFIED" in words(picture(state, label["after"]))


def test_removed_and_kept_images_get_cards_and_internal_pictures_the_inputs(tmp_path):
    record, state = run(tmp_path, '[wsi]\nmacro = "keep"\n\n[run]\ninternal_previews = true\n')
    by_role = {("label" if "label image" in p["title"] else "macro"): p for p in record["previews"]}
    assert "removed" in by_role["label"]["title"] and "kept unchanged" in by_role["macro"]["title"]
    assert "removed" in words(picture(state, by_role["label"]["after"])).lower()
    assert "Kowalczyk" not in words(picture(state, by_role["macro"]["after"]))  # a kept macro is not shown
    assert "Kowalczyk" in words(picture(state, by_role["macro"]["before"]))  # internal: the input's macro


def test_previews_can_be_switched_off(tmp_path):
    record, _ = run(tmp_path, "[wsi]\npreviews = false\n")
    assert record["previews"] == []


def test_mrxs_photos_get_pictures_too(tmp_path):
    import mrxs_slides

    inp = tmp_path / "in"
    mrxs_slides.write_mrxs(inp / "m", stem="case", macro=slides.slide_photo(label_end="right"))
    recipe = tmp_path / "r.toml"
    recipe.write_text('[wsi]\nlabel = "replace"\nmacro = "blank-label"\n')
    summary = run_batch(RunConfig(recipe, Secret(b"p" * 32), inp, tmp_path / "out", plugins=("wsi",)))
    assert summary.exit_code == 0, [r.reason for r in summary.results]
    (result,) = summary.results
    titles = [p["title"] for p in result.previews]
    assert any(t.startswith("mirax label image: replaced") for t in titles), titles
    assert any(t.startswith("mirax macro image: label end painted over") for t in titles), titles
    state = tmp_path / "out" / ".medscrub"
    for entry in result.previews:
        assert "before" not in entry
        assert "Kowalczyk" not in words(picture(state, entry["after"])), entry["title"]
