"""The batch pipeline with a real (toy) format: tree, atomicity, isolation,
determinism, resume, leak check."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import toyformat

from medscrub.manifest import Manifest
from medscrub.model import MedscrubError
from medscrub.output import STATE_DIR


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and STATE_DIR not in p.relative_to(root).parts
    }


def test_output_mirrors_input_and_input_is_untouched(toy_tree, tmp_path, run_toy):
    before = tree_bytes(toy_tree)
    summary = run_toy(toy_tree)
    assert summary.exit_code == 0
    assert [r.status for r in summary.results] == ["done"] * 3
    out = tree_bytes(tmp_path / "out")
    assert sorted(out) == ["a.toy", "sub/b.toy", "sub/c.toy"]
    assert tree_bytes(toy_tree) == before
    header, payload = toyformat.parse(out["a.toy"])
    assert header["name"] == header["id"] and header["id"].startswith("P")
    assert "date" not in header  # the default date policy removes
    assert payload == b"\x00\x01payload"
    # the same patient gets the same pseudonym in another file
    assert toyformat.parse(out["sub/c.toy"])[0]["id"] == header["id"]
    assert toyformat.parse(out["sub/b.toy"])[0]["id"] != header["id"]


def test_same_input_recipe_and_secret_give_identical_output(toy_tree, tmp_path, run_toy):
    run_toy(toy_tree, tmp_path / "one")
    run_toy(toy_tree, tmp_path / "two", workers=2)
    assert tree_bytes(tmp_path / "one") == tree_bytes(tmp_path / "two")


def test_another_secret_gives_other_pseudonyms(toy_tree, tmp_path, run_toy):
    from medscrub.pseudonyms import Secret

    run_toy(toy_tree, tmp_path / "one")
    run_toy(toy_tree, tmp_path / "two", secret=Secret(b"another-secret-0123456789"))
    assert tree_bytes(tmp_path / "one")["a.toy"] != tree_bytes(tmp_path / "two")["a.toy"]


def test_bad_inputs_are_isolated_with_one_line_reasons(toy_tree, tmp_path, run_toy):
    (toy_tree / "notes.txt").write_text("not an image")
    (toy_tree / "broken.toy").write_bytes(b"garbage")
    (toy_tree / "truncated.toy").write_bytes(toyformat.MAGIC + b"name=Carol\n")
    toyformat.write_toy(toy_tree / "bug.toy", {"name": "Dan", "crash": "bug"})
    locked = toyformat.write_toy(toy_tree / "locked.toy", {"name": "Eve"})
    locked.chmod(0)
    try:
        summary = run_toy(toy_tree, workers=2)
    finally:
        locked.chmod(0o644)
    by_id = {r.id: r for r in summary.results}
    assert summary.exit_code == 1
    assert by_id["notes.txt"].status == "unsupported"
    assert by_id["broken.toy"].reason == "not a toy file"
    assert "truncated" in by_id["truncated.toy"].reason
    assert by_id["bug.toy"].reason.startswith("internal error ZeroDivisionError")
    if os.geteuid() != 0:  # root reads anything
        assert "Permission" in by_id["locked.toy"].reason
    for r in summary.results:
        assert r.reason is None or "\n" not in r.reason
    # the good files were still done
    assert all(by_id[i].status == "done" for i in ("a.toy", "sub/b.toy", "sub/c.toy"))
    assert not (tmp_path / "out" / "broken.toy").exists()
    assert not (tmp_path / "out" / "notes.txt").exists()


def test_a_dying_worker_fails_only_its_item(toy_tree, tmp_path, run_toy):
    toyformat.write_toy(toy_tree / "poison.toy", {"name": "Zed", "crash": "exit"})
    summary = run_toy(toy_tree, workers=2)
    by_id = {r.id: r for r in summary.results}
    assert by_id["poison.toy"].status == "failed"
    assert "died" in by_id["poison.toy"].reason
    assert sorted(i for i, r in by_id.items() if r.status == "done") == ["a.toy", "sub/b.toy", "sub/c.toy"]


def test_manifest_lists_every_input(toy_tree, tmp_path, run_toy):
    (toy_tree / "notes.txt").write_text("x")
    run_toy(toy_tree)
    records = Manifest(tmp_path / "out").previous()
    assert set(records) == {"a.toy", "sub/b.toy", "sub/c.toy", "notes.txt"}
    a = records["a.toy"]
    assert a["status"] == "done" and a["output"] == ["a.toy"] and a["format"] == "toy"
    assert a["actions"] == {"pseudonymise": 2, "remove": 1}
    assert "mappings" not in a
    text = (tmp_path / "out" / STATE_DIR / "manifest.jsonl").read_text()
    assert "Alice" not in text and "PAT000123" not in text


def test_rerun_resumes_and_redoes_missing(toy_tree, tmp_path, run_toy):
    first = run_toy(toy_tree)
    assert first.skipped == 0
    (tmp_path / "out" / "sub" / "b.toy").unlink()  # as if lost
    (tmp_path / "out" / "a.toy").write_bytes(b"")  # as a power loss can leave it
    second = run_toy(toy_tree)
    assert second.skipped == 1
    assert sorted(r.id for r in second.results) == ["a.toy", "sub/b.toy"]
    assert (tmp_path / "out" / "sub" / "b.toy").exists()
    assert toyformat.parse((tmp_path / "out" / "a.toy").read_bytes())


def test_rerun_with_another_secret_is_refused(toy_tree, tmp_path, run_toy):
    from medscrub.pseudonyms import Secret

    run_toy(toy_tree)
    with pytest.raises(MedscrubError, match="another recipe or secret"):
        run_toy(toy_tree, secret=Secret(b"another-secret-0123456789"))


def test_killed_run_leaves_no_partial_output_and_resumes(toy_tree, tmp_path):
    for n in range(6):
        toyformat.write_toy(toy_tree / f"slow{n}.toy", {"name": f"Slow {n}", "id": f"S{n}XXXXX", "sleep": "0.4"})
    out = tmp_path / "out"
    script = textwrap.dedent(f"""
        import sys, toyformat
        from pathlib import Path
        from medscrub.context import RunConfig
        from medscrub.pipeline import run_batch
        from medscrub.pseudonyms import Secret
        config = RunConfig(None, Secret(b"test-secret-0123456789abcdef"), Path({str(toy_tree)!r}), Path({str(out)!r}),
                           extra_plugins=(toyformat.plugin,), plugins=())
        sys.exit(run_batch(config, workers=2).exit_code)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    deadline = time.time() + 60
    manifest = out / STATE_DIR / "manifest.jsonl"
    while time.time() < deadline and not (manifest.exists() and manifest.read_text().count("\n") >= 2):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole process group, workers too
    proc.wait()
    done_before = sum(1 for line in manifest.read_text().splitlines() if '"done"' in line)
    assert 0 < done_before < 9
    # every output file present is whole
    for path in out.rglob("*.toy"):
        toyformat.parse(path.read_bytes())
    from medscrub.context import RunConfig
    from medscrub.pipeline import run_batch
    from medscrub.pseudonyms import Secret

    config = RunConfig(None, Secret(b"test-secret-0123456789abcdef"), toy_tree, out,
                       extra_plugins=(toyformat.plugin,), plugins=())
    summary = run_batch(config, workers=2)
    assert summary.exit_code == 0
    assert summary.skipped >= done_before
    assert len(summary.results) + summary.skipped == 9
    assert not any((out / STATE_DIR / "tmp").glob("*"))
    assert len(list(out.rglob("*.toy"))) == 9


def test_leak_check_withholds_output(toy_tree, tmp_path, run_toy):
    toyformat.write_toy(toy_tree / "leaky.toy", {"name": "Leaky Person", "id": "LEAK00001", "leak": "Leaky Person"})
    summary = run_toy(toy_tree)
    leaky = next(r for r in summary.results if r.id == "leaky.toy")
    assert leaky.status == "failed"
    assert leaky.reason.startswith("leak check: name in bytes")
    assert "Leaky Person" not in leaky.reason and "Leaky Person" not in " ".join(leaky.findings)
    assert not (tmp_path / "out" / "leaky.toy").exists()
    assert not any((tmp_path / "out" / STATE_DIR / "tmp").glob("*"))


def test_identifying_file_names_are_caught(tmp_path, run_toy):
    root = tmp_path / "in"
    toyformat.write_toy(root / "PAT000999" / "scan.toy", {"name": "Fay Field", "id": "PAT000999"})
    summary = run_toy(root)
    assert summary.results[0].status == "failed"
    assert "file name" in summary.results[0].reason


def test_pseudonymous_names_stay_inside_the_output(toy_tree, tmp_path, run_toy):
    recipe = tmp_path / "r.toml"
    recipe.write_text('[output]\nnaming = "pseudonymous"\n')
    summary = run_toy(toy_tree, recipe=recipe)
    outputs = [o for r in summary.results for o in r.output]
    assert len(outputs) == 2
    for o in outputs:
        assert ".." not in Path(o).parts
        assert (tmp_path / "out" / o).resolve().is_relative_to((tmp_path / "out").resolve())
    # the toy names files by patient only: a.toy and c.toy (one patient,
    # different content) collide, and the second fails instead of overwriting
    failed = [r for r in summary.results if r.status == "failed"]
    assert [r.id for r in failed] == ["sub/c.toy"]
    assert "exists already with other content" in failed[0].reason


def test_plugins_group_items_into_one_work_unit(toy_tree, tmp_path, run_toy):
    for n in range(3):
        toyformat.write_toy(toy_tree / "series" / f"{n}.toy", {"name": "Gil Group", "id": "G000001", "series": "S1"})
    summary = run_toy(toy_tree, workers=2)
    assert summary.exit_code == 0
    grouped = [r for r in summary.results if r.members]
    assert len(grouped) == 1
    assert grouped[0].members == ["series/0.toy", "series/1.toy", "series/2.toy"]
    assert grouped[0].output == grouped[0].members
    assert len(summary.results) == 4  # a, b, c and the series
    # a rerun knows the group is done; verify pairs every member with its original
    assert run_toy(toy_tree).skipped == 4
    from medscrub.verify import verify_tree

    site = tmp_path / "r.toml"
    site.write_text(f'[site]\nfiles = ["{Path(toyformat.__file__).with_name("toy_site.py")}"]\n')
    findings, checked = verify_tree(tmp_path / "out", toy_tree, site)
    assert checked == 6 and findings == []


def test_reidentification_map_holds_each_patient_once(toy_tree, tmp_path, run_toy):
    import sqlite3

    (toy_tree / "bad.toy").write_bytes(toyformat.MAGIC + b"name=Alice Example\nid=PAT000123\n")  # truncated
    recipe = tmp_path / "r.toml"
    recipe.write_text(f'[output]\nreidentification_map = "{tmp_path / "secure" / "map.sqlite"}"\n')
    summary = run_toy(toy_tree, recipe=recipe, workers=2)
    assert summary.count("done") == 3
    rows = sqlite3.connect(tmp_path / "secure" / "map.sqlite").execute("SELECT kind, original FROM map").fetchall()
    assert sorted(rows) == [("patient", "PAT000123"), ("patient", "PAT000456")]
    inside = tmp_path / "r2.toml"
    inside.write_text(f'[output]\nreidentification_map = "{tmp_path / "out2" / "map.sqlite"}"\n')
    with pytest.raises(MedscrubError, match="outside the output folder"):
        run_toy(toy_tree, tmp_path / "out2", recipe=inside)


def test_leak_check_scans_in_chunks_and_skips_declared_sample_data(tmp_path):
    from medscrub import verification
    from medscrub.output import OutputSink
    from medscrub.pipeline import check_outputs

    sink = OutputSink(tmp_path / "out", Path("big.bin"))
    tmp = sink.path()
    data = bytearray(3 * verification.CHUNK)
    at = verification.CHUNK - 3  # across a chunk boundary
    data[at:at + 11] = b"Doe^Jane^Q "
    data[2 * verification.CHUNK:2 * verification.CHUNK + 18] = "MRN-00481".encode("utf-16-le")
    tmp.write_bytes(bytes(data))
    ids = {"name": {"Doe^Jane^Q"}, "id": {"MRN-00481"}}
    found = check_outputs(ids, sink)
    by_kind = {f.kind: f.place for f in found}
    assert by_kind["name"] == f"bytes at offset {at} (utf-8)"
    # zero bytes around a UTF-16-LE value also read as UTF-16-BE one byte earlier
    c2 = 2 * verification.CHUNK
    assert by_kind["id"] in (f"bytes at offset {c2} (utf-16-le)", f"bytes at offset {c2 - 1} (utf-16-be)")
    sink.opaque(tmp, [(2 * verification.CHUNK - 10, 2 * verification.CHUNK + 100)])
    assert [f.kind for f in check_outputs(ids, sink)] == ["name"]


def test_deep_verify_runs_the_format_verifier_before_output_lands(toy_tree, tmp_path, run_toy):
    recipe = tmp_path / "r.toml"
    recipe.write_text("[run]\ndeep_verify = true\n")
    # a short name (4 chars) escapes the raw scan but not the toy verifier
    toyformat.write_toy(toy_tree / "short.toy", {"name": "Ida", "id": "ID07", "leak": "ID07"})
    summary = run_toy(toy_tree, recipe=recipe)
    short = next(r for r in summary.results if r.id == "short.toy")
    assert short.status == "failed" and "header" in short.reason


def test_relative_roots_work(toy_tree, tmp_path, run_toy, monkeypatch):
    monkeypatch.chdir(tmp_path)
    summary = run_toy(Path("in"), Path("rel-out"))
    assert summary.exit_code == 0 and (tmp_path / "rel-out" / "sub" / "b.toy").exists()


def test_a_number_inside_a_longer_number_is_not_a_leak(tmp_path):
    from medscrub.verification import scan_bytes

    path = tmp_path / "f"
    ids = {"device": {"25641"}, "id": {"0048151"}}
    path.write_bytes(b"UID 2.25.1199256413387 and serial=25641;")
    assert [f.place for f in scan_bytes(path, ids)] == ["bytes at offset 34 (utf-8)"]
    path.write_bytes(b"2.25.1199256413387 " + "x0048151y".encode("utf-16-le"))
    assert [f.kind for f in scan_bytes(path, ids)] == ["id"]
    path.write_bytes(b"2.25.1199256413387 " + "900481519".encode("utf-16-le"))
    assert scan_bytes(path, ids) == []
