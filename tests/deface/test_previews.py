"""The QA pictures of a defaced head: three slices and a front view.

The head is ch2 at 2 mm with the face box set to the background by hand, so
these tests need no network run and stay fast; the cleaners' own runs are in
test_cleaners.py."""

from __future__ import annotations

import io

import numpy as np
import pytest
from deface_heads import face_box
from PIL import Image

from medscrub_deface import views
from medscrub_deface.cleaner import DEFACE, SKULL_STRIP, _previews


def _picture(png: bytes) -> np.ndarray:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(io.BytesIO(png)) as im:
        return np.asarray(im.convert("L"), dtype=np.float32)


@pytest.fixture(scope="module")
def defaced(ch2):
    data, affine, _ = ch2
    after = np.where(face_box(data.shape, affine, below=0.0), data.min(), data)
    assert (after != data).sum() > 1000
    return data, after, affine


def test_deface_previews_are_slices_and_a_front_view(defaced):
    before, after, affine = defaced
    slices, front = _previews(DEFACE, before, after, affine, None)
    assert "three slices" in slices.title and "front" in front.title
    for preview in (slices, front):
        b, a = _picture(preview.before), _picture(preview.after)
        assert b.shape == a.shape and b.shape[0] == views.PANEL
    # three panels side by side, each at least as wide as it is high / 2
    assert _picture(slices.after).shape[1] > 1.5 * views.PANEL
    # ch2 at 2 mm is 182 mm wide and 182 mm high: the front view is square
    assert _picture(front.after).shape == (views.PANEL, views.PANEL)


def test_the_face_is_dark_in_the_after_front_view_and_the_rest_unchanged(defaced):
    before, after, affine = defaced
    _, front = _previews(DEFACE, before, after, affine, None)
    b, a = _picture(front.before), _picture(front.after)
    # where the removed voxels lie, seen from the front: the same rendering of the removed mask
    removed = (after != before).astype(np.float32)
    face = np.asarray(views.front(removed, affine, threshold=0.5)) > 0
    assert 0.05 < face.mean() < 0.5
    assert b[face].mean() > 140  # the face was lit: near the viewer
    assert a[face].mean() < 0.75 * b[face].mean()
    # the nose tip, the nearest and brightest part before, is gone
    nose = b >= np.percentile(b[face], 99)
    assert a[nose & face].mean() < 0.6 * b[nose & face].mean()
    # the top of the head (above every removed voxel) is drawn exactly alike
    top = np.arange(b.shape[0]) < np.flatnonzero(face.any(1))[0] - 4
    assert np.abs(a[top] - b[top]).max() <= 1


def test_front_view_faces_the_patient(ch2):
    """Patient's right on the picture's left, head at the top: a bright block
    planted on the patient's right above the ears shows at the top left."""
    data, affine, _ = ch2
    marked = data.copy()
    ijk = np.indices(data.shape).reshape(3, -1).T
    xyz = (ijk @ affine[:3, :3].T + affine[:3, 3]).reshape(*data.shape, 3)
    # RAS+: x grows towards the patient's right
    block = (xyz[..., 0] > 20) & (xyz[..., 0] < 50) & (xyz[..., 2] > 40) & (xyz[..., 2] < 60) & (xyz[..., 1] > 60)
    marked[block] = data.max()
    b, m = (np.asarray(picture, dtype=np.float32) for picture in views.fronts(data, marked, affine))
    rows, cols = np.nonzero(np.abs(m - b) > 20)
    assert len(rows)
    assert cols.mean() < b.shape[1] / 2 and rows.mean() < b.shape[0] / 2


def test_skull_strip_previews_have_a_front_view_too(ch2):
    data, affine, brain = ch2
    after = np.where(brain, data, data.min())
    previews = _previews(SKULL_STRIP, data, after, affine, None)
    assert [p.title.split(":")[0] for p in previews] == [SKULL_STRIP, SKULL_STRIP]
    assert "front" in previews[1].title
    b, a = _picture(previews[1].before), _picture(previews[1].after)
    assert b.shape == a.shape and not np.array_equal(a, b)
