"""medscrub-wsi on 3DHistech MRXS: a generated slide in, a de-identified slide out.

The slide (``mrxs_slides.write_mrxs``) is first shown to be a real MRXS
slide: openslide opens it as ``mirax`` with its levels and associated
images.  Each output must hold no PHI byte sequence in any file or name, open
in openslide with the same levels, dimensions, MPP and level-0 pixels, keep
its tiles byte for byte and show no label, macro or preview.
"""

from __future__ import annotations

import hashlib
import io
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

import mrxs_slides  # noqa: E402
import slides  # noqa: E402

from medscrub.context import RunConfig, RunContext  # noqa: E402
from medscrub.pipeline import run_batch  # noqa: E402
from medscrub.pseudonyms import Secret  # noqa: E402
from medscrub.verify import verify_tree  # noqa: E402

openslide = pytest.importorskip("openslide")
from PIL import Image  # noqa: E402

SECRET = Secret(b"m" * 32)
ID_FORMS = [mrxs_slides.SLIDE_ID.encode(), mrxs_slides.SLIDE_ID.encode("utf-16-le")[: len(mrxs_slides.SLIDE_ID)]]


def run(inp: Path, out: Path, recipe: str | None = None):
    recipe_path = None
    if recipe is not None:
        recipe_path = inp.parent / f"{out.name}.toml"
        recipe_path.write_text(recipe)
    return run_batch(RunConfig(recipe_path, SECRET, inp, out, plugins=("wsi",)))


def outputs(out: Path) -> list[Path]:
    return sorted(p for p in out.rglob("*") if p.is_file() and ".medscrub" not in p.parts)


def digest(paths: list[Path]) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def the_slide(out: Path) -> Path:
    (mrxs,) = [p for p in outputs(out) if p.suffix == ".mrxs"]
    return mrxs


def assert_clean(out: Path, source: mrxs_slides.MrxsSlide, removed: list[str]) -> None:
    files = outputs(out)
    assert files
    for path in files:
        data = path.read_bytes()
        for phi in mrxs_slides.PHI:
            for enc in ("utf-8", "utf-16-le"):
                assert phi.encode(enc) not in data, f"{phi!r} ({enc}) left in {path.name}"
        for form in ID_FORMS:
            assert form not in data, f"the original SLIDE_ID left in {path.name}"
        for name in removed:
            for probe in probes(source, name, removed):
                assert probe not in data, f"bytes of the removed {name} left in {path.name}"
        relative = path.relative_to(out).as_posix().lower()
        assert "kowalczyk" not in relative and "mrn" not in relative


def probes(source: mrxs_slides.MrxsSlide, name: str, removed: list[str]) -> list[bytes]:
    """Pieces of a removed image found in no image that stays: the PHI
    pictures share headers and plain background rows."""
    image = source.associated[name]
    kept = b"".join([*(v for k, v in source.associated.items() if k not in removed),
                     *(tile for level in source.tiles for tile in level)])
    pieces = [image[at:at + 64] for at in range(0, len(image) - 64, 16)]
    found = [piece for piece in pieces if piece not in kept]
    assert len(found) > len(pieces) // 4
    return found


def dark_text_on_light(image: Image.Image) -> bool:
    grey = np.asarray(image.convert("L"))
    return grey.min() < 100 and grey.max() > 200


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    root = tmp_path_factory.mktemp("mrxs")
    inp, out = root / "in", root / "out"
    source = mrxs_slides.write_mrxs(inp / "case")
    before = digest(source.files)
    summary = run(inp, out)
    return source, before, out, summary


def test_the_fixture_is_a_mirax_slide_full_of_phi(tmp_path):
    source = mrxs_slides.write_mrxs(tmp_path)
    slide = openslide.OpenSlide(str(source.mrxs))
    assert slide.properties["openslide.vendor"] == "mirax"
    assert slide.level_dimensions == ((1024, 1024), (512, 512), (256, 256))
    assert set(slide.associated_images) == {"label", "macro", "thumbnail"}
    assert dark_text_on_light(slide.associated_images["label"])
    props = slide.properties
    assert props["mirax.GENERAL.SLIDE_NAME"] == slides.STEM and slides.NAME in props["mirax.GENERAL.PROJECT_NAME"]
    assert props["mirax.GENERAL.SCANNER_HARDWARE_ID"] == slides.SERIAL
    assert props["mirax.GENERAL.SLIDE_CREATIONDATETIME"].startswith(mrxs_slides.DATE_DOTTED)
    for name in ("Index.dat", "Data0000.dat", "Data0001.dat"):
        assert (source.folder / name).read_bytes()[5:37] == ID_FORMS[0]
    assert slides.OPERATOR.encode() in (source.folder / "Data0001.dat").read_bytes()[:400]  # ProfileName
    # the tiles the writer made are what openslide shows
    region = np.asarray(slide.read_region((0, 0), 0, (256, 256)))[..., :3]
    assert np.array_equal(region, np.asarray(Image.open(io.BytesIO(source.tiles[0][0]))))


def test_the_slide_is_one_item_and_done(batch):
    source, _, out, summary = batch
    assert [(r.status, r.reason) for r in summary.results] == [("done", None)]
    (result,) = summary.results
    mrxs = the_slide(out)
    folder = mrxs.with_name(mrxs.name[:-5])
    assert mrxs.name.startswith("S") and mrxs.parent == out / "case"  # folders mirrored, names pseudonymous
    assert sorted(p.name for p in folder.iterdir()) == ["Data0000.dat", "Data0001.dat", "Index.dat", "Slidedat.ini"]
    assert len(result.output) == 5
    assert result.flags["wsi.vendor"] == "mirax"
    assert result.flags["wsi.left_out"] == "1 label, 1 macro, 1 preview, 1 slide photo"


def test_no_phi_in_any_output_byte_or_name(batch):
    source, _, out, _ = batch
    assert_clean(out, source, ["label", "macro", "preview", "wholeslide"])


def test_openslide_reads_the_same_slide(batch):
    source, _, out, _ = batch
    before, after = openslide.OpenSlide(str(source.mrxs)), openslide.OpenSlide(str(the_slide(out)))
    assert after.properties["openslide.vendor"] == "mirax"
    assert after.level_count == before.level_count == 3
    assert after.level_dimensions == before.level_dimensions
    for key in ("openslide.mpp-x", "openslide.mpp-y", "openslide.objective-power"):
        assert after.properties[key] == before.properties[key]
    assert set(after.associated_images) == set()
    for level in range(3):
        region = (0, 0), level, before.level_dimensions[level]
        assert np.array_equal(np.asarray(before.read_region(*region)), np.asarray(after.read_region(*region)))
    for key, value in after.properties.items():
        assert not any(phi in value for phi in mrxs_slides.PHI), key
    assert after.properties["mirax.GENERAL.SLIDE_NAME"] == the_slide(out).name[:-5]


def test_tiles_are_copied_byte_for_byte(batch):
    source, _, out, _ = batch
    folder = the_slide(out).with_name(the_slide(out).name[:-5])
    header = 5 + len(mrxs_slides.SLIDE_ID) + 3
    # Data0000 holds only tiles after its header: all of it is the input's bytes
    old, new = (source.folder / "Data0000.dat").read_bytes(), (folder / "Data0000.dat").read_bytes()
    assert new[header + 256:] == old[header + 256:] and len(new) == len(old)
    assert new[header:header + 256] == bytes(256)  # the header padding (ProfileName) is zeroed
    data = new + (folder / "Data0001.dat").read_bytes()
    assert all(tile in data for level in source.tiles for tile in level)


def test_the_input_is_unchanged(batch):
    source, before, _, _ = batch
    assert digest(source.files) == before


def test_label_replaced_macro_kept_dates_shifted_utf16_headers(tmp_path):
    inp = tmp_path / "in"
    source = mrxs_slides.write_mrxs(inp, utf16_headers=True)
    recipe = '[wsi]\nlabel = "replace"\nmacro = "keep"\n\n[dates]\npolicy = "shift"\n'
    summary = run(inp, tmp_path / "out", recipe)
    assert summary.exit_code == 0, summary.results[0].reason
    mrxs = the_slide(tmp_path / "out")
    slide = openslide.OpenSlide(str(mrxs))
    assert set(slide.associated_images) == {"label", "macro", "thumbnail"}
    label = slide.associated_images["label"]
    assert label.size == (200, 120) and dark_text_on_light(label)
    before = openslide.OpenSlide(str(source.mrxs))
    assert np.array_equal(np.asarray(slide.associated_images["macro"]), np.asarray(before.associated_images["macro"]))
    created = slide.properties["mirax.GENERAL.SLIDE_CREATIONDATETIME"]
    assert created != f"{mrxs_slides.DATE_DOTTED} 10:22:33" and created.endswith(" 10:22:33")
    assert len(created) == len(f"{mrxs_slides.DATE_DOTTED} 10:22:33") and created[4] == "."
    new_id = slide.properties["mirax.GENERAL.SLIDE_ID"]
    assert len(new_id) == len(mrxs_slides.SLIDE_ID) and new_id != mrxs_slides.SLIDE_ID
    folder = mrxs.with_name(mrxs.name[:-5])
    head = (folder / "Data0001.dat").read_bytes()[5:5 + len(new_id)]
    assert head == new_id.encode("utf-16-le")[: len(new_id)]  # the new ID in the header's own form
    # the kept macro shows PHI in its pixels (that is what "keep" means), but no PHI text is left
    assert_clean(tmp_path / "out", source, ["label"])


def test_output_names_mirrored_or_pseudonymous(tmp_path):
    inp = tmp_path / "in"
    mrxs_slides.write_mrxs(inp / "a", stem="plain")
    kept = run(inp, tmp_path / "mirrored", "[wsi]\nrename_files = false\n")
    assert kept.exit_code == 0, kept.results[0].reason
    assert sorted(p.relative_to(tmp_path / "mirrored").as_posix() for p in outputs(tmp_path / "mirrored")) == [
        "a/plain.mrxs", "a/plain/Data0000.dat", "a/plain/Data0001.dat", "a/plain/Index.dat", "a/plain/Slidedat.ini"]
    flat = run(inp, tmp_path / "flat", '[output]\nnaming = "pseudonymous"\n')
    assert flat.exit_code == 0, flat.results[0].reason
    mrxs = the_slide(tmp_path / "flat")
    assert mrxs.parent == tmp_path / "flat" and mrxs.name.startswith("S")
    assert openslide.OpenSlide(str(mrxs)).properties["openslide.vendor"] == "mirax"


def test_rules_and_in_place(tmp_path):
    inp = tmp_path / "in"
    source = mrxs_slides.write_mrxs(inp)
    recipe = """
[[rules]]
match = "mirax:SLIDE_ID"
action = "keep"
format = "wsi"

[[rules]]
match = "PROJECT_NAME"
action = "replace"
value = "site"
format = "wsi"
"""
    summary = run(inp, tmp_path / "out", recipe)
    assert summary.exit_code == 0, summary.results[0].reason
    slide = openslide.OpenSlide(str(the_slide(tmp_path / "out")))
    assert slide.properties["mirax.GENERAL.SLIDE_ID"] == mrxs_slides.SLIDE_ID  # kept everywhere, so it opens
    assert slide.properties["mirax.GENERAL.PROJECT_NAME"] == "site"
    before = digest(source.files)
    refused = run(inp, tmp_path / "out2", "[wsi]\nin_place = true\n")
    assert refused.results[0].status == "failed" and "in-place" in refused.results[0].reason
    assert digest(source.files) == before and outputs(tmp_path / "out2") == []


def test_damaged_slides_fail_with_one_line_and_the_batch_goes_on(tmp_path):
    inp = tmp_path / "in"
    mrxs_slides.write_mrxs(inp / "good", stem="good")
    no_index = mrxs_slides.write_mrxs(inp / "noindex", stem="noindex")
    (no_index.folder / "Index.dat").unlink()
    truncated = mrxs_slides.write_mrxs(inp / "truncated", stem="truncated")
    data = truncated.folder / "Data0000.dat"
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    no_folder = mrxs_slides.write_mrxs(inp / "nofolder", stem="nofolder")
    for path in no_folder.folder.iterdir():
        path.unlink()
    no_folder.folder.rmdir()
    no_mrxs = mrxs_slides.write_mrxs(inp / "nomrxs", stem="nomrxs")
    no_mrxs.mrxs.unlink()
    summary = run(inp, tmp_path / "out")
    by_id = {r.id.split("/")[0]: r for r in summary.results}
    assert set(by_id) == {"good", "noindex", "truncated", "nofolder", "nomrxs"}
    assert by_id["good"].status == "done"
    expected = {
        "noindex": "index file Index.dat is missing",
        "truncated": "past the end",
        "nofolder": "without its data folder",
        "nomrxs": "without its .mrxs file",
    }
    for name, words in expected.items():
        result = by_id[name]
        assert result.status == "failed" and result.output == [], (name, result.reason)
        assert words in result.reason and "\n" not in result.reason, result.reason
        assert "internal error" not in result.reason
    assert all(p.is_relative_to(tmp_path / "out" / "good") for p in outputs(tmp_path / "out"))


def test_verify_finds_nothing_in_the_output_and_the_label_in_the_input(batch):
    source, _, out, _ = batch
    context = RunContext(RunConfig(None, SECRET, source.folder.parent, out, plugins=("wsi",)))
    hook = context.pm.hook.medscrub_verify
    mrxs = the_slide(out)
    folder = mrxs.with_name(mrxs.name[:-5])

    def found(output: Path, original: Path | None) -> list:
        return [f for fs in hook(output=output, original=original, format="wsi", context=context) for f in fs]

    for output in outputs(out):
        assert found(output, source.folder) == []
    assert found(folder / "Slidedat.ini", None) == []
    kinds = {f.kind for f in found(source.folder / "Slidedat.ini", None)}
    assert {"label image", "macro image", "preview image", "identifying field"} <= kinds
    broken = [f.kind for f in found(source.mrxs.parent / "missing.mrxs", None)]
    assert broken == ["unreadable"]


def test_medscrub_verify_and_deep_verify(batch, tmp_path):
    source, _, out, _ = batch
    findings, checked = verify_tree(out, source.folder.parent.parent)
    assert [f.line() for f in findings] == [] and checked == 5
    inp = tmp_path / "in"
    mrxs_slides.write_mrxs(inp)
    deep = run(inp, tmp_path / "out", "[run]\ndeep_verify = true\n")
    assert [(r.status, r.reason) for r in deep.results] == [("done", None)]
