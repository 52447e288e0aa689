"""Shared fixtures for the whole suite."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

SUPPORT = Path(__file__).parent / "support"
# Worker processes import test plugins by module name: put them on the path
# of this process and, through PYTHONPATH, of every process it starts.
sys.path.insert(0, str(SUPPORT))
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SUPPORT), os.environ.get("PYTHONPATH")]))

from medscrub.pseudonyms import Secret  # noqa: E402

TEST_SECRET = b"test-secret-0123456789abcdef"


@pytest.fixture
def secret() -> Secret:
    return Secret(TEST_SECRET, "test")
