"""medscrub-dicom: the DICOM PS3.15 Annex E confidentiality profile for medscrub.

Pixel cleaners that change DICOM pixels call :func:`mark_clean_pixel_data`
(or :func:`mark_clean_recognizable_visual_features`) on the dataset so that
the De-identification Method Code Sequence says so.
"""

from importlib.metadata import PackageNotFoundError, version

from .markers import add_method_code, mark_clean_pixel_data, mark_clean_recognizable_visual_features
from .options import DicomOptions

try:
    __version__ = version("medscrub-dicom")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = [
    "DicomOptions", "__version__", "add_method_code", "mark_clean_pixel_data",
    "mark_clean_recognizable_visual_features",
]
