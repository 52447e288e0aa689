"""Synthetic ultrasound-like frames with planted identifying text.

For the tests and the benchmark: random names, dates and IDs in varied
fonts, sizes, colours and positions, drawn over speckle and over a
fan-shaped image, with the truth kept: each planted string, its box and its
ink.  Nothing here is real PHI.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

FONT_FOLDERS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/truetype/liberation")
FONT_FILES = (
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf",
    "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "LiberationSans-Regular.ttf", "LiberationMono-Regular.ttf",
)
_CONSONANTS = "BCDFGHJKLMNPRSTVWZ"
_VOWELS = "AEIOUY"


@dataclass
class Planted:
    text: str
    kind: str  # name | date | id
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 of the ink
    ink: np.ndarray = field(repr=False)  # bool mask of the glyph pixels, frame-sized


@dataclass
class Frame:
    pixels: np.ndarray  # H x W x 3 uint8 RGB
    anatomy: np.ndarray  # bool mask of the fan
    planted: list[Planted]


def fonts() -> list[Path | None]:
    """TrueType fonts on this machine (None: Pillow's own scalable font)."""
    found: list[Path | None] = []
    for folder in FONT_FOLDERS:
        for name in FONT_FILES:
            path = Path(folder) / name
            if path.is_file():
                found.append(path)
    return found or [None]


def _font(path: Path | None, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size) if path is None else ImageFont.truetype(str(path), size)


def _word(rng: random.Random, lo: int = 3, hi: int = 9) -> str:
    n = rng.randint(lo, hi)
    return "".join(rng.choice(_CONSONANTS if i % 2 == 0 else _VOWELS) for i in range(n)).capitalize()


def random_string(rng: random.Random) -> tuple[str, str]:
    kind = rng.choice(("name", "name", "date", "id"))
    if kind == "name":
        last, first = _word(rng), _word(rng)
        style = rng.randrange(4)
        text = [f"{last.upper()}^{first.upper()}", f"{last}, {first}", f"{first} {last}", f"{last.upper()} {first}"][style]
    elif kind == "date":
        y, m, d = rng.randint(1930, 2025), rng.randint(1, 12), rng.randint(1, 28)
        text = rng.choice((f"{y}-{m:02d}-{d:02d}", f"{d:02d}/{m:02d}/{y}", f"{d:02d}.{m:02d}.{y}", f"{m}/{d}/{y}"))
    else:
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(6, 10)))
        text = rng.choice((digits, f"ID {digits}", f"MRN:{digits}", f"{_word(rng, 2, 3).upper()}{digits}"))
    return text, kind


def speckle(rng: np.random.Generator, shape: tuple[int, int], level: float) -> np.ndarray:
    """Rayleigh speckle, a little smoothed, mean about ``level``."""
    noise = rng.rayleigh(1.0, size=(shape[0] // 2 + 1, shape[1] // 2 + 1))
    noise = np.kron(noise, np.ones((2, 2)))[: shape[0], : shape[1]]
    return np.clip(noise * level / 1.25, 0, 255)


def fan_mask(height: int, width: int) -> np.ndarray:
    """A sector of a circle, apex near the top centre: the anatomy."""
    yy, xx = np.mgrid[0:height, 0:width]
    ax, ay = width / 2, height * 0.12
    r = np.hypot(xx - ax, yy - ay)
    angle = np.degrees(np.arctan2(xx - ax, yy - ay))
    return (r > height * 0.08) & (r < height * 0.82) & (np.abs(angle) < 38)


def _background(nrng: np.random.Generator, fan: np.ndarray) -> np.ndarray:
    """Dim speckle, and brighter speckle fading with depth in the fan: 8-bit RGB."""
    height, width = fan.shape
    base = speckle(nrng, (height, width), 14.0)
    depth = np.linspace(1.0, 0.45, height)[:, None]
    base[fan] = speckle(nrng, (height, width), 80.0)[fan] * np.broadcast_to(depth, (height, width))[fan]
    return np.repeat(base.astype(np.uint8)[:, :, None], 3, axis=2)


def banner(lines: list[str], width: int = 640, height: int = 480, seed: int = 0, size: int = 16) -> np.ndarray:
    """An ultrasound-like frame with ``lines`` written in its top left
    corner, where devices put the patient banner: 8-bit RGB."""
    image = Image.fromarray(_background(np.random.default_rng(seed), fan_mask(height, width)))
    draw = ImageDraw.Draw(image)
    font = _font(fonts()[0], size)
    for i, line in enumerate(lines):
        draw.text((6, 6 + i * (size + 6)), line, fill=(230, 230, 230), font=font)
    return np.asarray(image).copy()


def render(seed: int, width: int = 800, height: int = 600, strings: int = 8, over_anatomy: int = 1) -> Frame:
    """One frame with ``strings`` planted strings; ``over_anatomy`` of them
    over the fan, the rest in the borders where devices put them."""
    rng = random.Random(seed)
    fan = fan_mask(height, width)
    image = Image.fromarray(_background(np.random.default_rng(seed), fan))
    draw = ImageDraw.Draw(image)
    families = fonts()
    taken = np.zeros((height, width), bool)
    planted: list[Planted] = []
    for n in range(strings):
        inside = n < over_anatomy
        for _ in range(200):
            text, kind = random_string(rng)
            size = rng.choice((11, 12, 13, 14, 16, 18, 20, 24, 28, 34, 42, 64, 88)) * height // 600
            font = _font(rng.choice(families), max(size, 10))
            x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font)
            tw, th = x1 - x0, y1 - y0
            if tw >= width - 8 or th >= height // 4:
                continue
            x, y = rng.randint(4, width - tw - 4), rng.randint(4, height - th - 4)
            region = (slice(y - 3, y + th + 3), slice(x - 3, x + tw + 3))
            in_fan = fan[y:y + th, x:x + tw].mean()
            if inside != (in_fan > 0.9) or (not inside and in_fan > 0.0) or taken[region].any():
                continue
            colour = rng.choice(((255, 255, 255), (230, 230, 230), (200, 200, 200), (255, 255, 0),
                                 (0, 255, 128), (120, 200, 255), (170, 170, 170)))
            layer = Image.new("L", (width, height), 0)
            ImageDraw.Draw(layer).text((x - x0, y - y0), text, fill=255, font=font)
            ink = np.asarray(layer) > 0
            draw.text((x - x0, y - y0), text, fill=colour, font=font)
            ys, xs = np.nonzero(ink)
            planted.append(Planted(text, kind, (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1), ink))
            taken[region] = True
            break
    return Frame(np.asarray(image).copy(), fan, planted)


def erased_fraction(planted: Planted, changed: np.ndarray) -> float:
    """The share of a planted string's ink pixels that were changed."""
    return float(changed[planted.ink].mean())


def anatomy_change(frame: Frame, cleaned: np.ndarray) -> float:
    """The share of anatomy pixels changed, leaving out the planted strings
    that lie on the anatomy (those must change) and a margin of half their
    height round them (a box round a line of text is that much larger)."""
    keep = frame.anatomy.copy()
    h, w = keep.shape
    for p in frame.planted:
        x0, y0, x1, y1 = p.box
        margin = max(4, (y1 - y0) // 2)
        keep[max(0, y0 - margin):min(h, y1 + margin), max(0, x0 - margin):min(w, x1 + margin)] = False
    changed = np.any(frame.pixels != cleaned, axis=2)
    return float(changed[keep].mean()) if keep.any() else 0.0
