"""A generated slide label that shows the slide's pseudonym instead of the patient."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw, ImageFont


def label_picture(width: int, height: int, lines: list[str]) -> Image.Image:
    """A white grey-scale picture of ``width`` x ``height`` (at least 16x16)
    with ``lines`` of black text, centred."""
    width, height = max(int(width), 16), max(int(height), 16)
    image = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(image)
    size = max(8, height // (len(lines) + 1))
    while True:  # the largest font whose widest line fits, with a margin
        try:
            font = ImageFont.load_default(size=size)
        except TypeError:  # Pillow without FreeType: the fixed bitmap font
            font = ImageFont.load_default()
            break
        widest = max(draw.textbbox((0, 0), line, font=font)[2] for line in lines)
        if widest <= width * 0.9 or size <= 8:
            break
        size = max(8, int(size * min(0.95, width * 0.9 / widest)))
    y = max(2, (height - int(size * 1.2) * len(lines)) // 2)
    for line in lines:
        box = draw.textbbox((0, 0), line, font=font)
        x = max(2, (width - (box[2] - box[0])) // 2)
        draw.text((x, y), line, fill=0, font=font)
        y += int(size * 1.2)
    return image


def render_label(width: int, height: int, lines: list[str]) -> bytes:
    """:func:`label_picture` as a baseline JPEG (what every TIFF reader decodes)."""
    out = io.BytesIO()
    label_picture(width, height, lines).save(out, "JPEG", quality=90)
    return out.getvalue()
