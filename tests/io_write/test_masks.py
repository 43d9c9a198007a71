"""Contour rasterisation, SEG and label-map masks: analytic shapes and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.path import Path as MplPath

from dosimetry import Volume
from dosimetry.errors import DicomInputError, GeometryMismatchError, InputDataError
from dosimetry.io.masks import rasterize_polygons, rtstruct_to_masks

from .conftest import AXIAL, DICOMPYLER, circle, polygon_area

FOR = "1.2.826.0.1.3680043.8.498.1"
CENTER = (5.3, -7.1, 12.4)  # LPS mm, deliberately off the voxel lattice


def _grid(spacing, shape, origin, direction=AXIAL, for_uid=FOR) -> Volume:
    return Volume.from_spacing(
        np.zeros(shape, dtype=np.float32),
        spacing,
        origin,
        direction=direction,
        unit="1",
        frame_of_reference_uid=for_uid,
    )


def _centered_grid(spacing, shape, z_first, direction=AXIAL) -> Volume:
    """Grid whose in-plane centre is near CENTER and first slice is at z_first."""
    nk, nj, ni = shape
    origin = (
        CENTER[0] - 0.5 * (ni - 1) * spacing[2] + 0.37,
        CENTER[1] - 0.5 * (nj - 1) * spacing[1] - 0.21,
        z_first,
    )
    return _grid(spacing, shape, origin, direction)


def _ellipsoid_contours(semi, z_planes, n=256):
    """Axial contour stack of an ellipsoid (semi-axes a, b, c in x, y, z) centred at CENTER."""
    a, b, c = semi
    out = []
    for z in z_planes:
        u = (z - CENTER[2]) / c
        if abs(u) >= 1:
            continue
        f = np.sqrt(1 - u * u)
        t = np.linspace(0, 2 * np.pi, n, endpoint=False)
        out.append(
            np.column_stack(
                [CENTER[0] + a * f * np.cos(t), CENTER[1] + b * f * np.sin(t), np.full(n, z)]
            )
        )
    return out


def _ellipse_area(pts):
    return polygon_area(pts)


Z_PLANES = CENTER[2] - 45.0 + 3.0 * np.arange(31) + 0.8  # CT slice positions, 3 mm apart


@pytest.fixture(scope="module")
def sphere():
    contours = _ellipsoid_contours((30.0, 30.0, 30.0), Z_PLANES)
    v_contours = sum(_ellipse_area(c) for c in contours) * 3.0  # mm^3, slab thickness 3 mm
    return contours, v_contours


# ------------------------------------------------------------------------ 2-D oracle
def test_rasterize_polygons_matches_matplotlib_even_odd():
    """Sub-pixel coverage equals an independent point-in-polygon test (matplotlib) with XOR."""
    rng = np.random.default_rng(7)
    polys = []
    for _ in range(4):  # overlapping random star polygons
        c = rng.uniform(8, 22, size=2)
        t = np.sort(rng.uniform(0, 2 * np.pi, 9))
        r = rng.uniform(3, 9, 9)
        polys.append(np.column_stack([c[0] + r * np.sin(t), c[1] + r * np.cos(t)]))
    s = 5
    frac = rasterize_polygons(polys, (30, 32), supersample=s)
    off = (np.arange(s) + 0.5) / s - 0.5
    jj, ii = np.meshgrid(
        (np.arange(30)[:, None] + off).ravel(),
        (np.arange(32)[:, None] + off).ravel(),
        indexing="ij",
    )
    pts = np.column_stack([jj.ravel(), ii.ravel()])
    inside = np.zeros(len(pts), dtype=bool)
    for p in polys:
        inside ^= MplPath(p).contains_points(pts)
    expected = inside.reshape(30, s, 32, s).mean(axis=(1, 3))
    np.testing.assert_array_equal(frac, expected.astype(np.float32))


def test_pixel_aligned_square_is_exact():
    sq = np.array([[1.5, 2.5], [1.5, 5.5], [4.5, 5.5], [4.5, 2.5]])
    frac = rasterize_polygons([sq], (7, 8), supersample=3)
    expected = np.zeros((7, 8))
    expected[2:5, 3:6] = 1.0
    np.testing.assert_array_equal(frac, expected)


# ------------------------------------------------------------------------ analytic shapes
def test_sphere_on_ct_grid(make_rtstruct, sphere):
    contours, v_contours = sphere
    grid = _centered_grid((3.0, 0.9, 0.9), (31, 80, 80), Z_PLANES[0])
    rs = make_rtstruct({"Sphere": contours}, FOR)
    frac = rtstruct_to_masks(rs, grid, mode="fraction")["Sphere"]
    binary = rtstruct_to_masks(rs, grid)["Sphere"]
    v_analytic = 4.0 / 3.0 * np.pi * 30.0**3
    v_frac = frac.array.sum(dtype=np.float64) * frac.voxel_volume_ml * 1000.0
    v_bin = binary.array.sum() * binary.voxel_volume_ml * 1000.0
    assert binary.array.dtype == bool and frac.array.dtype == np.float32
    assert v_frac == pytest.approx(v_contours, rel=2e-3)  # supersampling only
    assert v_bin == pytest.approx(v_contours, rel=0.02)
    assert v_contours == pytest.approx(v_analytic, rel=0.02)  # slab model vs true sphere
    # centre voxel inside, corner voxel outside
    k, j, i = np.rint(grid.world_to_index(np.array(CENTER))).astype(int)
    assert binary.array[k, j, i] and not binary.array[0, 0, 0]


def test_sphere_on_coarse_pet_grid_between_planes(make_rtstruct, sphere):
    """4 mm grid whose slices fall between the 3 mm contour planes."""
    contours, v_contours = sphere
    grid = _centered_grid((4.0, 4.0, 4.0), (25, 22, 22), Z_PLANES[0] - 3.1)
    rs = make_rtstruct({"Sphere": contours}, FOR)
    frac = rtstruct_to_masks(rs, grid, mode="fraction")["Sphere"]
    binary = rtstruct_to_masks(rs, grid, mode="binary")["Sphere"]
    v_frac = frac.array.sum(dtype=np.float64) * frac.voxel_volume_ml * 1000.0
    v_bin = binary.array.sum() * binary.voxel_volume_ml * 1000.0
    assert frac.array.min() >= 0.0 and frac.array.max() <= 1.0
    assert v_frac == pytest.approx(v_contours, rel=3e-3)
    assert v_bin == pytest.approx(v_contours, rel=0.02)


def test_ellipsoid_on_rotated_grid(make_rtstruct):
    """In-plane rotated grid (axial planes still parallel): volume of an ellipsoid."""
    semi = (40.0, 25.0, 21.0)
    contours = _ellipsoid_contours(semi, Z_PLANES)
    v_contours = sum(_ellipse_area(c) for c in contours) * 3.0
    ang = np.deg2rad(30.0)
    rot = np.array([[np.cos(ang), -np.sin(ang), 0], [np.sin(ang), np.cos(ang), 0], [0, 0, 1]])
    grid = _centered_grid((2.0, 1.5, 1.5), (45, 80, 80), Z_PLANES[0] - 1.0, direction=rot @ AXIAL)
    # centre the rotated grid on the ellipsoid
    shift = np.array(CENTER) - grid.center_mm()
    shift[2] = 0.0
    grid = Volume(
        grid.array,
        grid.affine + np.pad(shift[:, None], ((0, 1), (3, 0))),
        "1",
        frame_of_reference_uid=FOR,
    )
    masks = rtstruct_to_masks(make_rtstruct({"E": contours}, FOR), grid, mode="fraction")
    v = masks["E"].array.sum(dtype=np.float64) * grid.voxel_volume_ml * 1000.0
    assert v == pytest.approx(v_contours, rel=5e-3)
    assert v_contours == pytest.approx(4 / 3 * np.pi * np.prod(semi), rel=0.02)
    assert not masks["E"].provenance["clipped"]


def test_hole_island_and_two_islands(make_rtstruct):
    """Even-odd rule: annulus with an island in the hole, plus a separate disc, one plane."""
    z = 0.0
    contours = [
        circle((0.0, 0.0), 20.0, z),  # outer
        circle((0.0, 0.0), 10.0, z),  # hole
        circle((0.0, 0.0), 4.0, z),  # island inside the hole
        circle((40.0, 0.0), 6.0, z),  # separate disc
    ]
    grid = _grid((2.0, 0.5, 0.5), (1, 100, 160), (-25.0, -25.0, 0.0))
    m = rtstruct_to_masks(make_rtstruct({"R": contours}, FOR), grid, mode="fraction")["R"]
    area = m.array.sum(dtype=np.float64) * 0.25
    a = [polygon_area(c) for c in contours]
    assert area == pytest.approx(a[0] - a[1] + a[2] + a[3], rel=2e-3)
    b = rtstruct_to_masks(make_rtstruct({"R": contours}, FOR), grid)["R"].array[0]

    def at(x, y):
        j, i = np.rint(grid.world_to_index(np.array([x, y, z]))[1:]).astype(int)
        return bool(b[j, i])

    assert at(15, 0) and not at(7, 0) and at(0, 0) and at(40, 0) and not at(30, 0)


def test_slab_thickness_from_single_plane_uses_structure_set_spacing(make_rtstruct):
    """A one-plane ROI gets the structure set's plane spacing (3 mm) as thickness."""
    big = _ellipsoid_contours((30, 30, 30), Z_PLANES)
    small = [circle((0.0, 0.0), 5.0, float(Z_PLANES[10]))]
    grid = _centered_grid((1.0, 1.0, 1.0), (100, 70, 70), Z_PLANES[0] - 5.0)
    m = rtstruct_to_masks(make_rtstruct({"big": big, "one": small}, FOR), grid, "one", "fraction")
    v = m["one"].array.sum(dtype=np.float64)  # mm^3 (1 mm voxels)
    assert v == pytest.approx(polygon_area(small[0]) * 3.0, rel=0.01)


def test_gap_between_planes_stays_empty(make_rtstruct):
    """Planes at 0,3,6 and 30,33,36 mm: nothing is invented in between."""
    contours = [circle((0.0, 0.0), 8.0, z) for z in (0.0, 3.0, 6.0, 30.0, 33.0, 36.0)]
    grid = _grid((3.0, 1.0, 1.0), (16, 30, 30), (-14.5, -14.5, -3.0))
    m = rtstruct_to_masks(make_rtstruct({"two": contours}, FOR), grid)["two"].array
    per_slice = m.sum(axis=(1, 2))
    assert np.all(per_slice[[1, 2, 3, 11, 12, 13]] > 0)
    assert np.all(per_slice[4:11] == 0)


# ------------------------------------------------------------------------ real data
def test_dicompyler_rtstruct_on_its_dose_grid(dicompyler_dose_path):
    from dosimetry.io.rtdose import read_rtdose

    dose = read_rtdose(dicompyler_dose_path)
    masks = rtstruct_to_masks(DICOMPYLER / "rtss.dcm", dose, ["Heart", "Lt Lung", "BODY"])
    assert set(masks) == {"Heart", "Lt Lung", "BODY"}
    for m in masks.values():
        assert m.same_grid(dose) and m.frame_of_reference_uid == dose.frame_of_reference_uid
    # the heart lies inside the body
    assert np.all(masks["BODY"].array[masks["Heart"].array])


# ------------------------------------------------------------------------ bad input
def test_other_frame_of_reference_refused(make_rtstruct, sphere):
    grid = _centered_grid((3.0, 2.0, 2.0), (5, 10, 10), 0.0)
    rs = make_rtstruct({"Sphere": sphere[0]}, "1.2.3.4.5.6")
    with pytest.raises(GeometryMismatchError) as exc:
        rtstruct_to_masks(rs, grid)
    assert "1.2.3.4.5.6" in str(exc.value) and FOR in str(exc.value)


def test_unknown_roi_lists_available(make_rtstruct, sphere):
    grid = _centered_grid((3.0, 2.0, 2.0), (5, 10, 10), 0.0)
    rs = make_rtstruct({"Sphere": sphere[0], "Liver": sphere[0]}, FOR)
    with pytest.raises(DicomInputError, match="available: Sphere, Liver"):
        rtstruct_to_masks(rs, grid, ["Kidney"])
    assert set(rtstruct_to_masks(rs, grid, ["sphere"])) == {"sphere"}  # case-insensitive


def test_roi_without_contours(dicompyler_dose_path):
    from dosimetry.io.rtdose import read_rtdose

    dose = read_rtdose(dicompyler_dose_path)
    with pytest.raises(InputDataError, match="Areola"):
        rtstruct_to_masks(DICOMPYLER / "rtss.dcm", dose, ["Areola"])


def test_oblique_grid_refused(make_rtstruct, sphere):
    ang = np.deg2rad(10.0)
    tilt = np.array([[1, 0, 0], [0, np.cos(ang), -np.sin(ang)], [0, np.sin(ang), np.cos(ang)]])
    grid = _centered_grid((3.0, 2.0, 2.0), (20, 40, 40), 0.0, direction=tilt @ AXIAL)
    with pytest.raises(GeometryMismatchError, match="parallel"):
        rtstruct_to_masks(make_rtstruct({"Sphere": sphere[0]}, FOR), grid)


def test_not_an_rtstruct(ct_header):
    grid = _grid((3.0, 2.0, 2.0), (2, 3, 4), (0, 0, 0))
    with pytest.raises(DicomInputError, match="RT Structure Set"):
        rtstruct_to_masks(ct_header, grid)


def test_reversed_slice_axis_same_volume(make_rtstruct, sphere):
    """A grid whose slices run feet-wards gives the same mask in world space."""
    contours, v_contours = sphere
    up = _centered_grid((3.0, 1.2, 1.2), (31, 60, 60), Z_PLANES[0])
    down_dir = AXIAL.copy()
    down_dir[:, 0] *= -1.0
    down = Volume.from_spacing(
        np.zeros(up.shape, np.float32),
        up.spacing_mm,
        up.index_to_world([30, 0, 0]),
        direction=down_dir,
        unit="1",
        frame_of_reference_uid=FOR,
    )
    rs = make_rtstruct({"Sphere": contours}, FOR)
    a = rtstruct_to_masks(rs, up, mode="fraction")["Sphere"].array
    b = rtstruct_to_masks(rs, down, mode="fraction")["Sphere"].array
    np.testing.assert_array_equal(a, b[::-1])
    assert a.sum(dtype=np.float64) * up.voxel_volume_ml * 1000 == pytest.approx(
        v_contours, rel=2e-3
    )


def test_unrequested_oblique_roi_is_ignored(make_rtstruct, sphere):
    contours = sphere[0]
    tilted = contours[10].copy()
    tilted[:, 2] += np.linspace(0, 5, len(tilted))  # not planar along the slice axis
    rs = make_rtstruct({"Sphere": contours, "Odd": [tilted]}, FOR)
    grid = _centered_grid((3.0, 2.0, 2.0), (31, 40, 40), Z_PLANES[0])
    assert set(rtstruct_to_masks(rs, grid, ["Sphere"])) == {"Sphere"}
    with pytest.raises(GeometryMismatchError, match="Odd"):
        rtstruct_to_masks(rs, grid, ["Odd"])
