"""dciodvfy (Debian's dicom3tools) as a test oracle: the error lines of a
file with their values dropped, so that an output is compared with its input
and a UID or a date the profile replaced does not make an error new."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

DCIODVFY = shutil.which("dciodvfy")
MISSING = "dciodvfy is not installed (Debian/Ubuntu: apt-get install dicom3tools)"

_VALUE = [
    (re.compile(r"\[\d+\] = <.*?> - "), "[] = <> - "),  # "UI [1] = <value> - why"
    (re.compile(r"= '.' \(0x[0-9a-fA-F]+\)"), "= <char>"),
    (re.compile(r'"[^"]*"'), '""'),
    (re.compile(r"enumerated value <[^>]*>"), "enumerated value <>"),
    (re.compile(r"<[^A-Za-z>]*>"), "<>"),  # a value without letters: numbers, dates, UIDs
    (re.compile(r"\b\d+(?:\.\d+)+\b"), "<uid>"),
    (re.compile(r"values are .*$"), "values are ..."),
    (re.compile(r"\s+"), " "),
]


def normalise(line: str) -> str:
    for pattern, replacement in _VALUE:
        line = pattern.sub(replacement, line)
    return line.strip()


def errors(path: Path) -> set[str]:
    assert DCIODVFY is not None, MISSING
    proc = subprocess.run([DCIODVFY, str(path)], capture_output=True, text=True, errors="replace", timeout=120)
    lines = (proc.stdout + proc.stderr).splitlines()
    return {normalise(line) for line in lines if line.startswith("Error")}
