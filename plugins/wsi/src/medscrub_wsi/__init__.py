"""medscrub-wsi: de-identify whole-slide images (labels, macros, descriptions)."""

from .options import WsiOptions

__all__ = ["WsiOptions"]
