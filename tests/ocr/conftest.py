"""Fixtures for the erase-text tests: the engines, skipped with a reason
where a package is missing."""

from __future__ import annotations

import pytest

pytest.importorskip("medscrub_ocr")
pytest.importorskip("onnxruntime")


def _engine(name: str):
    """The named engine, or a skip that says which package is missing."""
    from medscrub_ocr.engines import EngineUnavailable, get_engine

    try:
        return get_engine(name)
    except EngineUnavailable as e:
        pytest.skip(str(e))


@pytest.fixture(scope="session")
def detector():
    return _engine("rapidocr")


@pytest.fixture(scope="session")
def tesseract():
    return _engine("tesseract")
