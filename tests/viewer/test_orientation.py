"""Orientation from the affine: edge letters and where a marker voxel lands (exact).

Expected letters are written by hand from the LPS convention (x to patient left, y to
posterior, z to head) and the radiological display convention, not from the code.
"""

from __future__ import annotations

import numpy as np
import pytest

import dosimetry as ds
from dosimetry._figures import plane
from dosimetry.viewer import extract_slice, orientation_labels, three_plane_figure

from .conftest import AXIAL

CANONICAL = {
    "axial": {"left": "R", "right": "L", "top": "A", "bottom": "P"},
    "coronal": {"left": "R", "right": "L", "top": "H", "bottom": "F"},
    "sagittal": {"left": "A", "right": "P", "top": "H", "bottom": "F"},
}


def _flip(d, col):
    d = d.copy()
    d[:, col] *= -1.0
    return d


# columns of the direction matrix: slice, row and column index axes in LPS
DIRECTIONS = {
    "axial": AXIAL,
    "axial, columns toward patient right": _flip(AXIAL, 2),
    "axial, rows toward anterior": _flip(AXIAL, 1),
    "axial, slices toward feet": _flip(AXIAL, 0),
    "permuted (identity: slices +L, rows +P, columns +S)": np.eye(3),
    # DICOM coronal: slices +P, rows toward feet, columns +L
    "coronal acquisition": np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]),
    "sagittal acquisition, flipped": np.array(
        [[-1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, -1.0, 0.0]]
    ),
}


def _grid(direction, shape=(5, 6, 7), spacing=(3.0, 2.0, 2.5)):
    return ds.Volume.from_spacing(
        np.zeros(shape), spacing, origin_mm=(10.0, -20.0, 5.0), direction=direction, unit="Gy"
    )


def _marker(volume, world_axis, sign):
    """Index of the voxel farthest along ``sign * world_axis``, central on the other axes."""
    idx = np.stack(np.indices(volume.shape), axis=-1).reshape(-1, 3)
    p = volume.index_to_world(idx)
    c = volume.center_mm()
    others = [a for a in range(3) if a != world_axis]
    score = sign * p[:, world_axis] - 1e-3 * np.abs(p[:, others] - c[others]).sum(axis=1)
    return tuple(int(x) for x in idx[int(np.argmax(score))])


@pytest.mark.parametrize("name", list(DIRECTIONS))
def test_edge_letters_are_canonical_for_axis_aligned_grids(name):
    v = _grid(DIRECTIONS[name])
    for view, expected in CANONICAL.items():
        assert orientation_labels(v, view) == expected, (name, view)


@pytest.mark.parametrize("name", list(DIRECTIONS))
def test_marker_voxels_land_on_the_right_image_edge(name):
    v = _grid(DIRECTIONS[name])
    # (world axis, sign, view, image edge where the marker must appear)
    cases = [
        (0, +1, "axial", "right"),  # patient left -> image right (radiological)
        (0, -1, "axial", "left"),
        (1, -1, "axial", "top"),  # anterior -> top
        (2, +1, "coronal", "top"),  # head -> top
        (0, +1, "coronal", "right"),
        (1, -1, "sagittal", "left"),  # anterior -> left in sagittal
        (2, -1, "sagittal", "bottom"),
    ]
    for axis, sign, view, edge in cases:
        m = _marker(v, axis, sign)
        arr = np.zeros(v.shape)
        arr[m] = 1.0
        pl = plane(v, view)
        img = extract_slice(arr, v, view, m[pl.normal_axis])
        r, c = np.argwhere(img == 1.0)[0]
        where = {"left": c == 0, "right": c == img.shape[1] - 1}
        where |= {"top": r == 0, "bottom": r == img.shape[0] - 1}
        assert where[edge], (name, view, edge, (r, c), img.shape)


@pytest.mark.parametrize(
    "name", ["axial", "axial, columns toward patient right", "coronal acquisition"]
)
def test_figure_puts_a_left_marker_on_the_right_at_its_mm_position(name):
    v = _grid(DIRECTIONS[name], shape=(6, 8, 9))
    m = _marker(v, 0, +1)  # most patient-left voxel
    arr = np.zeros(v.shape)
    arr[m] = 10.0
    dose = v.with_array(arr)
    marker_mm = dose.index_to_world(np.array(m, dtype=float))
    fig = three_plane_figure(dose, cursor_mm=marker_mm, dpi=40)
    ax = next(a for a in fig.axes if a.get_gid() == "view-axial")
    labels = {t.get_gid(): t.get_text() for t in ax.texts if t.get_gid()}
    assert labels["orientation-right"] == "L" and labels["orientation-left"] == "R"
    wash = ax.get_images()[-1]
    img = np.ma.filled(wash.get_array(), 0.0)
    r, c = np.argwhere(img == 10.0)[0]
    assert c == img.shape[1] - 1  # image right edge
    left, right, bottom, top = wash.get_extent()
    x_mm = left + (c + 0.5) * (right - left) / img.shape[1]
    y_mm = top + (r + 0.5) * (bottom - top) / img.shape[0]
    assert x_mm == pytest.approx(marker_mm[0], abs=1e-9)  # exact geometry
    assert y_mm == pytest.approx(marker_mm[1], abs=1e-9)
    assert ax.get_xlim()[0] < ax.get_xlim()[1]  # x (to patient left) grows to the right


def test_oblique_grid_gets_two_letter_labels():
    t = np.deg2rad(30.0)  # columns rotated 30 degrees from +L toward +P about the z axis
    col = np.array([np.cos(t), np.sin(t), 0.0])  # (0.866, 0.5, 0): mostly L, some P
    row = np.array([-np.sin(t), np.cos(t), 0.0])  # (-0.5, 0.866, 0): mostly P, some R
    v = _grid(np.column_stack([[0.0, 0.0, 1.0], row, col]))
    assert orientation_labels(v, "axial") == {
        "left": "RA",
        "right": "LP",
        "top": "AL",
        "bottom": "PR",
    }
    assert orientation_labels(v, "coronal")["top"] == "H"


def test_unknown_view_is_refused():
    with pytest.raises(ds.InputDataError, match="view='oblique'"):
        orientation_labels(_grid(AXIAL), "oblique")
