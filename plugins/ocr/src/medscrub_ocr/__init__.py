"""medscrub-ocr: erase text burned into pixels (DICOM, PNG, JPEG, TIFF).

The plugin module is :mod:`medscrub_ocr.plugin`; the strategy round a text
detector is :mod:`medscrub_ocr.detect`; the engines are
:mod:`medscrub_ocr.engines`.  docs/ocr.md is the user's guide.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("medscrub-ocr")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0"
