"""The targets of issue 8 on rendered frames: recall of planted text, a
second engine reads none of it afterwards, the anatomy stays."""

from __future__ import annotations

import numpy as np
import pytest

from medscrub_ocr.detect import Strategy, find_in_frames, find_text, mask_of
from medscrub_ocr.fill import fill
from medscrub_ocr.synthetic import anatomy_change, erased_fraction, render

SEEDS = range(1000, 1012)  # fixed: the numbers in docs/ocr.md come from bench/bench_ocr.py's larger set


def normalise(text: str) -> str:
    return "".join(ch for ch in text.upper() if ch.isalnum())


@pytest.fixture(scope="module")
def cleaned(detector):
    out = []
    for seed in SEEDS:
        frame = render(seed)
        boxes = find_text(frame.pixels, detector, Strategy(dilation=2))
        pixels = frame.pixels.copy()
        fill(pixels, boxes, "black")
        out.append((frame, boxes, pixels))
    return out


def test_recall_of_planted_text(cleaned):
    found = total = 0
    for frame, boxes, _ in cleaned:
        erased = mask_of(boxes, *frame.pixels.shape[:2])
        for planted in frame.planted:
            total += 1
            found += erased_fraction(planted, erased) >= 0.98
    assert total >= 90
    assert found / total >= 0.98, f"{found} of {total} planted strings erased"


def test_anatomy_changes_at_most_one_percent(cleaned):
    changed = [anatomy_change(frame, pixels) for frame, _, pixels in cleaned]
    assert float(np.mean(changed)) <= 0.01
    assert max(changed) <= 0.02


def test_tesseract_reads_none_of_the_planted_strings_afterwards(cleaned, tesseract):
    read_before = leaked = 0
    for frame, _, pixels in cleaned[:6]:
        before = normalise(tesseract.read(frame.pixels))
        after = normalise(tesseract.read(pixels))
        for planted in frame.planted:
            text = normalise(planted.text)
            if len(text) < 4:
                continue
            read_before += text in before
            leaked += text in after
    assert read_before >= 10, "tesseract should read the planted strings before cleaning"
    assert leaked == 0


def test_background_fill_keeps_the_surroundings(detector):
    frame = render(7)
    boxes = find_text(frame.pixels, detector, Strategy())
    pixels = frame.pixels.copy()
    fill(pixels, boxes, "background")
    erased = mask_of(boxes, *pixels.shape[:2])
    assert np.array_equal(pixels[~erased], frame.pixels[~erased])
    # boxes in the dim border now hold the dim background, not the text colour
    assert pixels[erased].mean() < 60


def test_cine_static_overlay_found_once_and_new_text_per_frame(detector):
    frame = render(3, width=400, height=300, strings=3, over_anatomy=0)
    frames = [frame.pixels.copy() for _ in range(6)]
    late = render(99, width=400, height=300, strings=1, over_anatomy=0)
    for i in (4, 5):  # text that appears late, such as a clock or a counter
        frames[i][late.planted[0].ink] = 255
    boxes, full = find_in_frames(len(frames), lambda i: frames[i], detector, Strategy())
    assert full == 1
    assert boxes[1] == boxes[0] == boxes[2] == boxes[3]
    for i in (4, 5):
        erased = mask_of(boxes[i], 300, 400)
        assert erased_fraction(late.planted[0], erased) >= 0.98
    for planted in frame.planted:
        assert erased_fraction(planted, mask_of(boxes[0], 300, 400)) >= 0.98
