"""Fixtures for the erase-text tests: the engines, skipped with a reason
where a package is missing."""

from __future__ import annotations

import pytest

pytest.importorskip("medscrub_ocr")
pytest.importorskip("onnxruntime")


@pytest.fixture(scope="session")
def detector():
    from medscrub_ocr.engines import EngineUnavailable, get_engine

    try:
        return get_engine("rapidocr")
    except EngineUnavailable as e:
        pytest.skip(str(e))


@pytest.fixture(scope="session")
def tesseract():
    from medscrub_ocr.engines import EngineUnavailable, get_engine

    try:
        return get_engine("tesseract")
    except EngineUnavailable as e:
        pytest.skip(str(e))

