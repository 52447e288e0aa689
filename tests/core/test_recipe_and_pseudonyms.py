"""The recipe's validation and the keyed pseudonym service."""

from __future__ import annotations

import datetime as dt
import os
import pickle
import stat

import pytest
from pydantic import BaseModel, ConfigDict

from medscrub.model import MedscrubError
from medscrub.pseudonyms import (
    Pseudonymizer,
    ReidentificationMap,
    Secret,
    SecretError,
    load_secret,
    new_secret_file,
    read_lookup,
)
from medscrub.recipe import DEFAULT_RECIPE, RecipeError, load_recipe


class ToySection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    level: int = 1


def write(tmp_path, text, name="r.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_default_recipe_is_valid(tmp_path):
    recipe = load_recipe(write(tmp_path, DEFAULT_RECIPE), {})
    assert recipe.dates.policy == "remove" and recipe.run.verify is True


@pytest.mark.parametrize(
    "text, message",
    [
        ('[dates]\npolicy = "blur"\n', "r.toml: dates.policy: Input should be 'remove', 'shift' or 'keep'"),
        ("[dates]\nshift_min_days = 10\nshift_max_days = 5\n", "r.toml: dates: Value error, shift_min_days must not exceed"),
        ("[output]\nnamng = 1\n", "r.toml: output.namng: unknown key"),
        ("[nonsense]\n", "r.toml: nonsense: unknown section"),
        ("[toy]\nlevel = 'high'\n", "r.toml: toy.level: Input should be a valid integer"),
        ("[toy]\nlevle = 2\n", "r.toml: toy.levle: unknown key"),
        ('[[rules]]\nmatch = "x"\naction = "burn"\n', "r.toml: rules.0.action: Value error, unknown action 'burn'"),
        ('[pseudonyms]\npatient = "lookup"\n', "needs lookup = 'table.csv'"),
        ("[dates\n", "r.toml: not valid TOML"),
    ],
)
def test_recipe_errors_name_file_key_and_problem(tmp_path, text, message):
    with pytest.raises(RecipeError) as e:
        load_recipe(write(tmp_path, text), {"toy": ToySection})
    assert message in str(e.value)


def test_plugin_sections_and_relative_paths(tmp_path):
    (tmp_path / "sub").mkdir()
    recipe = load_recipe(write(tmp_path, '[toy]\nlevel = 3\n[site]\nfiles = ["sub/rules.py"]\n'), {"toy": ToySection})
    assert recipe.section("toy").level == 3
    assert recipe.site.files == [tmp_path / "sub" / "rules.py"]
    assert load_recipe(None, {"toy": ToySection}).section("toy").level == 1


def test_missing_recipe_file(tmp_path):
    with pytest.raises(RecipeError, match="cannot read"):
        load_recipe(tmp_path / "missing.toml", {})


# -- secrets -----------------------------------------------------------------


def test_secret_never_shows_its_value(monkeypatch):
    monkeypatch.setenv("MEDSCRUB_SECRET", "very-secret-value-123")
    secret = load_secret()
    assert "very-secret" not in repr(secret) and "very-secret" not in str(secret)
    assert secret.source == "environment variable MEDSCRUB_SECRET"
    assert "very-secret" not in repr(Pseudonymizer(secret))


def test_short_or_missing_secret_is_refused(monkeypatch):
    with pytest.raises(SecretError, match="shorter than 16"):
        Secret(b"short")
    monkeypatch.delenv("MEDSCRUB_SECRET", raising=False)
    with pytest.raises(SecretError, match="no secret"):
        load_secret()


def test_new_secret_file_is_private_and_outside_output(tmp_path):
    path = tmp_path / "keys" / "k"
    secret = new_secret_file(path, forbidden=[tmp_path / "out"])
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_secret(file=path).value == secret.value
    with pytest.raises(SecretError, match="exists already"):
        new_secret_file(path)
    with pytest.raises(SecretError, match="must not be inside"):
        new_secret_file(tmp_path / "out" / "k", forbidden=[tmp_path / "out"])


# -- pseudonyms ----------------------------------------------------------------


@pytest.fixture
def p(secret):
    return Pseudonymizer(secret)


def test_pseudonyms_are_stable_keyed_and_separated_by_kind(p, secret):
    assert p.pseudonym("patient", "12345", prefix="P") == Pseudonymizer(secret).pseudonym("patient", "12345", prefix="P")
    assert p.pseudonym("patient", "12345") != p.pseudonym("accession", "12345")
    assert p.pseudonym("patient", "12345") != Pseudonymizer(Secret(b"x" * 20)).pseudonym("patient", "12345")
    assert len(p.pseudonym("patient", "12345", prefix="P", length=10)) == 11


def test_uids_are_valid_stable_and_short(p):
    uid = p.uid("1.2.840.113619.2.55.3.604688119.969.1268071029.320")
    assert uid == p.uid("1.2.840.113619.2.55.3.604688119.969.1268071029.320")
    assert uid.startswith("2.25.") and len(uid) <= 44
    assert all(part.isdigit() and (part == "0" or not part.startswith("0")) for part in uid.split("."))
    n = int(uid[5:])
    assert (n >> 76) & 0xF == 8  # UUID version 8
    assert p.uid("1.2.3") != p.uid("1.2.4")


def test_date_offsets_are_per_patient_and_in_range(secret):
    p = Pseudonymizer(secret, shift_min_days=10, shift_max_days=20)
    offsets = {p.date_offset(f"patient{i}") for i in range(200)}
    assert offsets <= set(range(-20, -9)) and len(offsets) > 5
    assert p.shift(dt.date(2020, 1, 31), "a") - p.shift(dt.date(2020, 1, 1), "a") == dt.timedelta(days=30)


def test_pseudonymizer_pickles_for_workers(p):
    q = pickle.loads(pickle.dumps(p))
    assert q.uid("1.2.3") == p.uid("1.2.3")


def test_lookup_table_wins_and_reports_bad_rows(tmp_path, secret):
    table = tmp_path / "ids.csv"
    table.write_text("original,pseudonym\n12345,STUDY-001\n")
    p = Pseudonymizer(secret, lookup=read_lookup(table))
    assert p.pseudonym("patient", "12345") == "STUDY-001"
    assert p.pseudonym("patient", "99999") != "STUDY-001"
    table.write_text("id,new\n1,2\n")
    with pytest.raises(MedscrubError, match="needs the columns original,pseudonym"):
        read_lookup(table)
    table.write_text("kind,original,pseudonym\npatient,1,\n")
    with pytest.raises(MedscrubError, match=":2: empty"):
        read_lookup(table)


def test_reidentification_map_is_private(tmp_path, secret):
    p = Pseudonymizer(secret, record=True)
    pseudo = p.pseudonym("patient", "12345")
    m = ReidentificationMap(tmp_path / "map.sqlite")
    m.add(p.take_issued())
    assert m.originals(pseudo) == [("patient", "12345")]
    m.close()
    assert stat.S_IMODE(os.stat(tmp_path / "map.sqlite").st_mode) == 0o600
