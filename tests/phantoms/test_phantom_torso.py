"""The analytic torso: shapes, cross-sections, rasterisation, tissue values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from matplotlib.path import Path as MplPath

import phantoms
from phantoms._geometry import (
    Ellipsoid,
    EllipticCylinder,
    StackedCylinders,
    axial_affine,
    polygon_area,
)

ORGANS = [
    "vertebral_column",
    "lung_right",
    "lung_left",
    "liver",
    "spleen",
    "kidney_right",
    "kidney_left",
]
GLANDS = [
    "parotid_right",
    "parotid_left",
    "submandibular_right",
    "submandibular_left",
    "lacrimal_right",
    "lacrimal_left",
]


@pytest.fixture(scope="module")
def torso() -> phantoms.TorsoPhantom:
    return phantoms.make_torso()


def test_grid_units_and_names(torso: phantoms.TorsoPhantom) -> None:
    assert torso.ct_hu.unit == "HU"
    assert torso.density.unit == "g/mL"
    assert torso.ct_hu.spacing_mm == (2.0, 2.0, 2.0)
    assert torso.ct_hu.shape == (206, 128, 176)  # z -162..250 mm: torso, neck and head
    assert torso.organ_names[0] == "body"
    assert set(ORGANS) <= set(torso.organ_names)
    assert [n for n in torso.organ_names if n in phantoms.HEAD_NECK_ORGANS] == list(
        phantoms.HEAD_NECK_ORGANS
    )
    assert torso.lesion_names == ["lesion_1", "lesion_2", "lesion_3", "lesion_4"]
    assert [torso.lesion_diameters_mm[n] for n in torso.lesion_names] == [30.0, 20.0, 12.0, 8.0]
    for name, m in torso.masks.items():
        assert m.unit == "1" and m.array.dtype == bool, name
        assert m.same_grid(torso.ct_hu)
    # the grid is axial, centred on x = y = 0 and z = 44 mm: slice -> +z, row -> +y,
    # column -> +x; slice centres at odd mm never meet a surface of the stacked body
    assert np.allclose(torso.ct_hu.center_mm(), (0.0, 0.0, 44.0))
    assert torso.ct_hu.origin_mm[2] == -161.0
    assert np.allclose(torso.ct_hu.direction, [[0, 0, 1], [0, 1, 0], [1, 0, 0]])


def test_tissue_values_at_structure_centres(torso: phantoms.TorsoPhantom) -> None:
    # exact tier: the value at each organ centre is the tabulated tissue value
    expected = {
        "lung_right": (-760.0, 0.26),
        "liver": (60.0, 1.06),
        "spleen": (50.0, 1.06),
        "kidney_left": (35.0, 1.05),
        "lesion_2": (45.0, 1.05),
        "lesion_4": (700.0, 1.42),  # vertebral lesion takes bone values
    }
    for name, (hu, rho) in expected.items():
        c = torso.structure(name).shape.center_mm
        k, j, i = np.rint(torso.ct_hu.world_to_index(np.array(c))).astype(int)
        assert torso.ct_hu.array[k, j, i] == hu, name
        assert torso.density.array[k, j, i] == pytest.approx(rho), name
    # air outside the body, fat under the skin, bone in the spine
    assert torso.ct_hu.array[0, 0, 0] == -1000.0
    k, j, i = np.rint(torso.ct_hu.world_to_index(np.array([0.0, -105.0, 0.0]))).astype(int)
    assert torso.ct_hu.array[k, j, i] == -100.0
    k, j, i = np.rint(torso.ct_hu.world_to_index(np.array([0.0, 75.0, -120.0]))).astype(int)
    assert torso.ct_hu.array[k, j, i] == 700.0


def test_organs_do_not_overlap_and_lesions_sit_where_described(
    torso: phantoms.TorsoPhantom,
) -> None:
    m = {n: torso.masks[n].array for n in torso.masks}
    for a in ORGANS + ["lesion_2"]:
        for b in ORGANS + ["lesion_2"]:
            if a < b:
                assert not np.any(m[a] & m[b]), (a, b)
        assert not np.any(m[a] & ~m["soft_tissue"]), a
    assert np.all(m["liver"][m["lesion_1"]])
    assert np.all(m["lung_right"][m["lesion_3"]])
    assert np.all(m["vertebral_column"][m["lesion_4"]])
    # every organ is inside the body ROI
    for a in torso.masks:
        assert np.all(m["body"][m[a]]), a


def _analytic_ml(shape) -> float:
    """Independent analytic volume: 4/3 pi a b c, pi a b h, or the sum of stacked parts."""
    if isinstance(shape, Ellipsoid):
        a, b, c = shape.semi_axes_mm
        return 4.0 / 3.0 * math.pi * a * b * c / 1000.0
    if isinstance(shape, StackedCylinders):
        return sum(_analytic_ml(p) for p in shape.parts)
    a, b = shape.semi_axes_mm
    return math.pi * a * b * (shape.z_max_mm - shape.z_min_mm) / 1000.0


def test_voxelised_volumes_match_analytic_volumes(torso: phantoms.TorsoPhantom) -> None:
    # voxel-centre sampling at 2 mm is within a few % for organs and ~25 % for the 8 mm
    # sphere; the 12 mm-radius marrow cylinder within 5 %, the 0.67 mL lacrimal glands
    # (~88 voxels of 2 mm) within 7 %
    vml = torso.ct_hu.voxel_volume_ml
    for name in ORGANS + ["body", "parotid_left", "submandibular_right"]:
        analytic = _analytic_ml(torso.structure(name).shape)
        assert torso.masks[name].array.sum() * vml == pytest.approx(analytic, rel=0.02), name
        assert torso.analytic_volume_ml(name) == pytest.approx(analytic, rel=1e-12), name
    for name, rel in (("red_marrow", 0.05), ("lacrimal_left", 0.07), ("lacrimal_right", 0.07)):
        analytic = _analytic_ml(torso.structure(name).shape)
        assert torso.masks[name].array.sum() * vml == pytest.approx(analytic, rel=rel), name
    # design volumes stated in the module docstring
    assert torso.analytic_volume_ml("parotid_left") == pytest.approx(22.1, abs=0.05)
    assert torso.analytic_volume_ml("submandibular_left") == pytest.approx(7.1, abs=0.05)
    assert torso.analytic_volume_ml("lacrimal_left") == pytest.approx(0.67, abs=0.005)
    assert torso.analytic_volume_ml("red_marrow") == pytest.approx(
        math.pi * 12.0**2 * 120.0 / 1000.0, rel=1e-12
    )
    assert torso.analytic_volume_ml("lesion_1") == pytest.approx(4 / 3 * math.pi * 15.0**3 / 1000)
    assert torso.masks["lesion_1"].array.sum() * vml == pytest.approx(14.137, rel=0.05)


def test_head_and_neck_glands_and_marrow_sit_where_described(
    torso: phantoms.TorsoPhantom,
) -> None:
    m = {n: torso.masks[n].array for n in torso.masks}
    for g in GLANDS:
        assert m[g].sum() > 0, g
        # inside the head's soft tissue, above the neck (z > 180 mm), apart from each other
        assert not np.any(m[g] & ~m["soft_tissue"]), g
        z = torso.ct_hu.index_to_world(np.argwhere(m[g]))[:, 2]
        assert z.min() > 180.0, g
        for h in GLANDS:
            if g < h:
                assert not np.any(m[g] & m[h]), (g, h)
    # right glands at negative x (LPS), lacrimal glands anterior (y < 0), parotids posterior
    centre = {n: torso.structure(n).shape.center_mm for n in GLANDS}
    assert centre["parotid_right"][0] < 0 < centre["parotid_left"][0]
    assert centre["lacrimal_left"][1] < 0 < centre["parotid_left"][1]
    assert centre["lacrimal_left"][2] > centre["parotid_left"][2] > centre["submandibular_left"][2]
    # red marrow: inside the vertebral column, at the kidneys' (lumbar) levels, bone tissue
    assert np.all(m["vertebral_column"][m["red_marrow"]])
    z = torso.ct_hu.index_to_world(np.argwhere(m["red_marrow"]))[:, 2]
    assert z.min() > -160.0 and z.max() < -30.0
    assert torso.structure("red_marrow").density_g_per_ml == 1.42
    lab = torso.labels.array
    assert np.all(lab[m["red_marrow"]] == torso.region_names.index("red_marrow"))


def test_torso_without_head_is_the_earlier_phantom() -> None:
    t = phantoms.make_torso(voxel_mm=4.0, head_and_neck=False)
    assert t.ct_hu.shape == (80, 64, 88)
    assert np.allclose(t.ct_hu.center_mm(), 0.0)
    assert not set(phantoms.HEAD_NECK_ORGANS) & set(t.organ_names)
    assert isinstance(t.structure("body").shape, EllipticCylinder)
    assert t.analytic_volume_ml("body") == pytest.approx(math.pi * 160 * 110 * 320 / 1000)


def test_stacked_cylinders_joints_and_validation() -> None:
    low = EllipticCylinder((0.0, 0.0), (20.0, 10.0), 0.0, 10.0)
    high = EllipticCylinder((0.0, 5.0), (10.0, 10.0), 10.0, 30.0)
    s = StackedCylinders((low, high))
    # the upper part owns the joint plane; the top plane belongs to the last part
    assert s.cross_section_area_mm2(10.0) == pytest.approx(math.pi * 100.0)
    assert s.cross_section_area_mm2(9.999) == pytest.approx(math.pi * 200.0)
    assert s.cross_section_area_mm2(30.0) == pytest.approx(math.pi * 100.0)
    assert s.cross_section(30.5) == [] and s.cross_section(-0.1) == []
    (poly,) = s.cross_section(20.0, n_points=64)
    assert polygon_area(poly) == pytest.approx(math.pi * 100.0, rel=1e-12)
    # membership is the union of the parts
    pts = np.array([[15.0, 0.0, 5.0], [15.0, 0.0, 15.0], [0.0, 14.0, 15.0]])
    assert list(s.contains(pts[:, 0], pts[:, 1], pts[:, 2])) == [True, False, True]
    lo, hi = s.bounds_mm()
    assert np.allclose(lo, (-20.0, -10.0, 0.0)) and np.allclose(hi, (20.0, 15.0, 30.0))
    moved = s.shifted((1.0, 2.0, 3.0))
    assert moved.parts[1].z_min_mm == 13.0 and moved.parts[0].center_xy_mm == (1.0, 2.0)
    with pytest.raises(ValueError, match="end to end"):
        StackedCylinders((low, EllipticCylinder((0.0, 0.0), (5.0, 5.0), 12.0, 20.0)))
    with pytest.raises(ValueError, match="at least one"):
        StackedCylinders(())


def test_labels_are_the_painting_order(torso: phantoms.TorsoPhantom) -> None:
    lab = torso.labels.array
    names = torso.region_names
    assert names[0] == "outside"
    # lesion_1 replaces liver inside its sphere
    assert np.all(lab[torso.masks["lesion_1"].array] == names.index("lesion_1"))
    liver_region = lab == names.index("liver")
    assert np.array_equal(liver_region, torso.masks["liver"].array & ~torso.masks["lesion_1"].array)


def test_ellipsoid_cross_section_polygon_area_and_membership() -> None:
    e = Ellipsoid((10.0, -5.0, 3.0), (30.0, 12.0, 20.0), angle_deg=25.0)
    for z in (3.0, 10.0, -12.0, 22.9):
        s2 = 1.0 - ((z - 3.0) / 20.0) ** 2
        analytic = math.pi * 30.0 * 12.0 * s2
        (poly,) = e.cross_section(z, n_points=96)
        assert polygon_area(poly) == pytest.approx(analytic, rel=1e-12)
        assert e.cross_section_area_mm2(z) == pytest.approx(analytic, rel=1e-12)
        # points well inside/outside the polygon agree with contains()
        rng = np.random.default_rng(1)
        pts = rng.uniform([-30, -40], [50, 30], size=(4000, 2))
        inside_poly = MplPath(poly).contains_points(pts)
        inside_shape = e.contains(pts[:, 0], pts[:, 1], np.full(len(pts), z))
        assert np.mean(inside_poly == inside_shape) > 0.99
    assert e.cross_section(23.5) == []


def test_cylinder_cross_section_and_shift() -> None:
    c = EllipticCylinder((1.0, 2.0), (20.0, 10.0), -5.0, 5.0)
    (poly,) = c.cross_section(0.0, n_points=64)
    assert polygon_area(poly) == pytest.approx(math.pi * 200.0, rel=1e-12)
    assert c.cross_section(5.5) == []
    s = c.shifted((3.0, -1.0, 2.0))
    assert s.center_xy_mm == (4.0, 1.0) and (s.z_min_mm, s.z_max_mm) == (-3.0, 7.0)


def test_rasterize_on_another_grid_with_shift(torso: phantoms.TorsoPhantom) -> None:
    aff = axial_affine((4.0, 4.0, 4.0), (-150.37, -110.21, -170.13))  # no exact surface ties
    shape = (86, 56, 76)
    m0 = torso.rasterize_mask("kidney_left", aff, shape)
    m1 = torso.rasterize_mask("kidney_left", aff, shape, shift_mm=(8.0, -4.0, 12.0))
    # the shift moves the mask by exactly (2, -1, 3) voxels (column, row, slice)
    assert np.array_equal(np.roll(m0, (3, -1, 2), axis=(0, 1, 2)), m1)
    with pytest.raises(ValueError, match="axial"):
        torso.rasterize_mask("liver", np.eye(4), shape)


def test_seed_and_jitter() -> None:
    a = phantoms.make_torso(seed=3, voxel_mm=4.0, anatomy_jitter=0.05)
    b = phantoms.make_torso(seed=3, voxel_mm=4.0, anatomy_jitter=0.05)
    c = phantoms.make_torso(seed=4, voxel_mm=4.0, anatomy_jitter=0.05)
    assert np.array_equal(a.ct_hu.array, b.ct_hu.array)
    assert not np.array_equal(a.ct_hu.array, c.ct_hu.array)
    # without jitter the seed does not change the anatomy
    n1 = phantoms.make_torso(seed=1, voxel_mm=4.0)
    n2 = phantoms.make_torso(seed=2, voxel_mm=4.0)
    assert np.array_equal(n1.labels.array, n2.labels.array)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="voxel_mm"):
        phantoms.make_torso(voxel_mm=0.0)
    with pytest.raises(ValueError, match="anatomy_jitter"):
        phantoms.make_torso(anatomy_jitter=0.5)
    with pytest.raises(ValueError, match="diameter"):
        phantoms.make_torso(voxel_mm=4.0, lesions=[("x", (0.0, 0.0, 0.0), -1.0)])
    with pytest.raises(ValueError, match="unique"):
        phantoms.make_torso(voxel_mm=4.0, lesions=[("liver", (0.0, 0.0, 0.0), 5.0)])
    with pytest.raises(KeyError, match="no structure"):
        phantoms.make_torso(voxel_mm=4.0).structure("heart")
    with pytest.raises(ValueError, match="fov_mm"):
        phantoms.make_torso(voxel_mm=4.0, fov_mm=(0.0, 100.0, 100.0))
