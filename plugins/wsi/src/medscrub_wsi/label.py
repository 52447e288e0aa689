"""A generated slide label that shows the slide's pseudonym instead of the patient."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw, ImageFont


def render_label(width: int, height: int, lines: list[str]) -> bytes:
    """A white grey-scale label of ``width`` x ``height`` with ``lines`` of black
    text, as a baseline JPEG (what every TIFF reader decodes)."""
    width, height = max(int(width), 16), max(int(height), 16)
    image = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(image)
    size = max(8, min(height // (len(lines) + 1), width // max(1, max(len(s) for s in lines)) * 2 // 1))
    try:
        font = ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: the fixed bitmap font
        font = ImageFont.load_default()
    y = max(2, (height - size * len(lines)) // 2)
    for line in lines:
        box = draw.textbbox((0, 0), line, font=font)
        x = max(2, (width - (box[2] - box[0])) // 2)
        draw.text((x, y), line, fill=0, font=font)
        y += int(size * 1.2)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()
