"""Pictures of a slide's label and macro for the QA report.

Each label or macro image of a slide gives one :class:`medscrub.Preview`:
"after" is what the output holds (the generated label, the macro with its
label end painted over, the macro kept as it was) or a card that says the
image was removed; "before" is the input's image, which shows the patient,
and reaches the report only with ``[run] internal_previews = true``.
Pictures are scaled to at most :data:`SIDE` pixels on their long side.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from medscrub import Preview

from .label import label_picture

SIDE = 480


def png(image: np.ndarray | Image.Image) -> bytes:
    picture = image if isinstance(image, Image.Image) else Image.fromarray(image)
    picture = picture.copy()
    picture.thumbnail((SIDE, SIDE))
    out = io.BytesIO()
    picture.save(out, "PNG", optimize=False)
    return out.getvalue()


def card(width: int, height: int, text: str) -> bytes:
    """A picture of the image's shape that says what became of it."""
    scale = min(1.0, SIDE / max(width, height, 1))
    return png(label_picture(max(16, round(width * scale)), max(16, round(height * scale)), [text]))


class Pictures:
    """Collects a slide's pictures while its edit is planned."""

    def __init__(self) -> None:
        self.previews: list[Preview] = []

    def add(self, title: str, before: np.ndarray | str | None, after: bytes | np.ndarray) -> None:
        """``before`` is the decoded input image, or why it could not be
        decoded (then no "before" picture)."""
        before_png = png(before) if isinstance(before, np.ndarray) else b""
        self.previews.append(Preview(title, before_png, after if isinstance(after, bytes) else png(after)))
