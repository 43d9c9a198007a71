"""An anthropomorphic torso with a head-and-neck region, from analytic shapes.

Anatomy (LPS mm, ``z`` towards the head; the default field of view spans z -162..+250):

=======================  ==========================================  ======  =========
structure                shape                                       HU      g/mL
=======================  ==========================================  ======  =========
body                     stacked elliptic cylinders: torso 320 x     -100    0.95
                         220 mm (z -160..160), neck 120 x 110 mm
                         (160..180), head 150 x 190 mm (180..250)
soft_tissue              the same stack, 15/8/6 mm inside the skin   40      1.05
vertebral_column         cylinder r = 17 mm at y = +75, z +-160      700     1.42
lung_right / lung_left   ellipsoids above the diaphragm (z > 0)      -760    0.26
liver                    ellipsoid, right upper abdomen              60      1.06
spleen                   ellipsoid, left upper abdomen               50      1.06
kidney_right / _left     ellipsoids, posterior, z -159..-71          35      1.05
red_marrow               cylinder r = 12 mm inside the vertebral     700     1.42
                         column, z -155..-35 (lumbar vertebral
                         bodies: image-based red-marrow surrogate)
parotid_right / _left    ellipsoids 24 x 40 x 44 mm, 22.1 mL each    35      1.05
submandibular_right/_l.  ellipsoids 22 x 28 x 22 mm, 7.1 mL each     35      1.05
lacrimal_right / _left   ellipsoids 16 x 10 x 8 mm, 0.67 mL each     35      1.05
lesion_1 .. lesion_4     spheres 30 (liver), 20 (para-aortic),       45      1.05
                         12 (right lung), 8 mm (vertebra)            (bone: vertebra values)
=======================  ==========================================  ======  =========

``make_torso(head_and_neck=False)`` builds the torso alone (z -160..160, the phantom of
earlier versions, without red_marrow and the glands).

The ``body`` shape is the skin outline (RTSTRUCT ROI ``body``, type EXTERNAL); its
tissue is subcutaneous fat wherever no other structure is painted. Structures are painted
in the order listed, so later ones replace earlier ones: the exclusive *region* of a
structure (``labels`` map) is its shape minus everything painted after it, while its
*ROI mask* is the whole analytic shape (lesion_1 lies inside the liver ROI, lesion_4
inside the vertebral column ROI, lesion_3 inside the right lung ROI, red_marrow inside
the vertebral column ROI).

The head is a test object, not an anatomical model: a stylised elliptic cylinder of soft
tissue (no skull, brain or eyes) that carries the glands which limit PSMA therapy. Gland
sizes and positions are design values of the phantom (parotid ~22 mL, submandibular
~7 mL, lacrimal ~0.7 mL each, in the range of adult glands), not a reference anatomy; the
lacrimal glands are a few PET/SPECT voxels and are meant to show partial-volume loss.

Tissue densities: ICRU Report 44 (1989) for adipose tissue (0.95), skeletal muscle (1.05),
inflated lung (0.26), liver and spleen (1.06), kidney (1.05); vertebral column (C4, whole)
1.42 g/cm^3 from Woodard HQ, White DR, Br J Radiol 1986;59:1209-1218. No density for
salivary or lacrimal gland tissue was found in the sources read: the glands take the
skeletal-muscle value (1.05). The red-marrow region keeps the vertebral-column tissue
(the CT does not change inside the spine); a dose to it is therefore a dose to the
lumbar-vertebra VOI at 1.42 g/mL, as an image-based marrow VOI on the CT would give.
CT numbers are typical unenhanced values; the phantom is a test object, not a calibration.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from dosimetry import Volume

from ._geometry import (
    Ellipsoid,
    EllipticCylinder,
    Shape,
    StackedCylinders,
    axial_affine,
    axial_grid_axes,
)

__all__ = [
    "Structure",
    "TorsoPhantom",
    "make_torso",
    "DEFAULT_LESIONS",
    "HEAD_NECK_ORGANS",
    "DEFAULT_FOV_MM",
    "DEFAULT_LESION_CLASSES",
]

#: Air outside the body: HU -1000, density of dry air at 20 C (NIST, 1.205e-3 g/cm^3).
AIR_HU = -1000.0
AIR_DENSITY_G_PER_ML = 1.205e-3

#: Default lesions: (name, LPS centre mm, diameter mm). Sizes 30/20/12/8 mm.
DEFAULT_LESIONS: tuple[tuple[str, tuple[float, float, float], float], ...] = (
    ("lesion_1", (-80.0, -20.0, -50.0), 30.0),  # liver metastasis
    ("lesion_2", (30.0, 40.0, -80.0), 20.0),  # para-aortic lymph node
    ("lesion_3", (-70.0, -10.0, 90.0), 12.0),  # right-lung nodule
    ("lesion_4", (0.0, 75.0, 40.0), 8.0),  # vertebral bone lesion
)

#: Tumour class of each default lesion, in the organ vocabulary of
#: :func:`dosimetry.kinetics.uptake_relation` (liver and lung lesions are soft-tissue /
#: visceral metastases, lesion_2 a lymph node, lesion_4 a bone metastasis).
DEFAULT_LESION_CLASSES: dict[str, str] = {
    "lesion_1": "tumour_soft_tissue",
    "lesion_2": "tumour_lymph_node",
    "lesion_3": "tumour_soft_tissue",
    "lesion_4": "tumour_bone",
}

#: Organs that the head-and-neck phantom adds (RTSTRUCT ROI names), painting order.
HEAD_NECK_ORGANS: tuple[str, ...] = (
    "red_marrow",
    "parotid_right",
    "parotid_left",
    "submandibular_right",
    "submandibular_left",
    "lacrimal_right",
    "lacrimal_left",
)

#: Default truth-grid extent (z, y, x) in mm and the LPS z of its centre, with and without
#: the head and neck: z -162..+250 (412 mm: 206 slices of 2 mm, 103 PET slices of 4 mm;
#: +29 % voxels; slice centres at odd mm, never on a surface of the stack) or -160..+160
#: (320 mm, the torso of earlier versions).
DEFAULT_FOV_MM: dict[bool, tuple[tuple[float, float, float], float]] = {
    True: ((412.0, 256.0, 352.0), 44.0),
    False: ((320.0, 256.0, 352.0), 0.0),
}


@dataclass(frozen=True)
class Structure:
    """One painted structure of the phantom.

    Parameters
    ----------
    name
        ROI / region name (snake case).
    shape
        Analytic shape (LPS mm).
    hu
        CT number of its tissue (Hounsfield units).
    density_g_per_ml
        Mass density of its tissue (g/mL).
    roi_type
        RTROIInterpretedType for the RTSTRUCT (``"EXTERNAL"``, ``"ORGAN"``, ``"GTV"``), or
        ``None`` when the structure is tissue only and gets no ROI.
    color
        ROIDisplayColor (RGB 0-255).
    description
        ROIDescription written to the RTSTRUCT (empty: none).
    """

    name: str
    shape: Shape
    hu: float
    density_g_per_ml: float
    roi_type: str | None
    color: tuple[int, int, int] = (255, 255, 0)
    description: str = ""


@dataclass(frozen=True, eq=False)
class TorsoPhantom:
    """Anthropomorphic torso phantom: analytic anatomy plus its rasterised truth.

    Attributes
    ----------
    structures
        Painted structures in painting order (label ``i + 1`` is ``structures[i]``).
    ct_hu
        Noise-free CT numbers (unit ``"HU"``) on the truth grid.
    density
        Mass density (unit ``"g/mL"``) on the truth grid.
    masks
        Inclusive analytic-shape masks (unit ``"1"``, bool) for every structure, on the
        truth grid (voxel centre inside the shape).
    labels
        Exclusive region map (unit ``"1"``, uint8): 0 outside the body, ``i + 1`` where
        ``structures[i]`` was painted last.
    organ_names
        Names of the RTSTRUCT ROIs (every structure with a ``roi_type``), body first.
    lesion_names
        Names of the lesions.
    lesion_diameters_mm
        Diameter (mm) of each lesion.
    seed
        Seed used to build the phantom.
    """

    structures: tuple[Structure, ...]
    ct_hu: Volume
    density: Volume
    masks: Mapping[str, Volume]
    labels: Volume
    organ_names: list[str]
    lesion_names: list[str]
    lesion_diameters_mm: Mapping[str, float] = field(default_factory=dict)
    seed: int = 0

    # -- lookup ------------------------------------------------------------------------
    @property
    def region_names(self) -> list[str]:
        """Label index -> name (index 0 is ``"outside"``)."""
        return ["outside", *(s.name for s in self.structures)]

    def structure(self, name: str) -> Structure:
        """The :class:`Structure` called ``name``."""
        for s in self.structures:
            if s.name == name:
                return s
        raise KeyError(f"no structure {name!r}; known: {', '.join(self.region_names[1:])}")

    def analytic_volume_ml(self, name: str) -> float:
        """Analytic volume (mL) of the shape of ``name`` (not of its exclusive region)."""
        return float(self.structure(name).shape.volume_ml)

    # -- rasterisation -----------------------------------------------------------------
    def rasterize_labels(
        self,
        affine: np.ndarray,
        shape: tuple[int, int, int],
        shift_mm: tuple[float, float, float] = (0.0, 0.0, 0.0),
    ) -> np.ndarray:
        """Exclusive label map (uint8) at the voxel centres of an axial grid.

        ``shift_mm`` translates the anatomy (LPS mm) before rasterising.
        """
        z, y, x = axial_grid_axes(affine, shape)
        return _paint(self.structures, z, y, x, shift_mm)

    def rasterize_mask(
        self,
        name: str,
        affine: np.ndarray,
        shape: tuple[int, int, int],
        shift_mm: tuple[float, float, float] = (0.0, 0.0, 0.0),
    ) -> np.ndarray:
        """Bool array: voxel centres of an axial grid inside the whole shape of ``name``."""
        z, y, x = axial_grid_axes(affine, shape)
        return _shape_mask(self.structure(name).shape.shifted(shift_mm), z, y, x)

    def mask_volumes(
        self,
        affine: np.ndarray,
        shape: tuple[int, int, int],
        *,
        shift_mm: tuple[float, float, float] = (0.0, 0.0, 0.0),
        frame_of_reference_uid: str | None = None,
        names: Sequence[str] | None = None,
    ) -> dict[str, Volume]:
        """Inclusive masks (unit ``"1"``) of ``names`` (default: the ROIs) on a grid."""
        out: dict[str, Volume] = {}
        for name in self.organ_names if names is None else names:
            out[name] = Volume(
                self.rasterize_mask(name, affine, shape, shift_mm),
                affine,
                "1",
                frame_of_reference_uid=frame_of_reference_uid,
            )
        return out

    def bounds_mm(self) -> tuple[np.ndarray, np.ndarray]:
        """LPS bounding box (mm) of all structures."""
        lows, highs = zip(*(s.shape.bounds_mm() for s in self.structures), strict=True)
        return np.min(lows, axis=0), np.max(highs, axis=0)


def _index_range(axis: np.ndarray, lo: float, hi: float) -> slice:
    """Indices of the ascending coordinates ``axis`` inside ``[lo, hi]``."""
    i0 = int(np.searchsorted(axis, lo, side="left"))
    i1 = int(np.searchsorted(axis, hi, side="right"))
    return slice(i0, max(i0, i1))


def _shape_mask(shape: Shape, z: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    out = np.zeros((z.size, y.size, x.size), dtype=bool)
    lo, hi = shape.bounds_mm()
    sz, sy, sx = (
        _index_range(z, lo[2], hi[2]),
        _index_range(y, lo[1], hi[1]),
        _index_range(x, lo[0], hi[0]),
    )
    zz, yy, xx = z[sz], y[sy], x[sx]
    if zz.size and yy.size and xx.size:
        out[sz, sy, sx] = shape.contains(
            xx[np.newaxis, np.newaxis, :],
            yy[np.newaxis, :, np.newaxis],
            zz[:, np.newaxis, np.newaxis],
        )
    return out


def _paint(
    structures: Sequence[Structure],
    z: np.ndarray,
    y: np.ndarray,
    x: np.ndarray,
    shift_mm: tuple[float, float, float],
) -> np.ndarray:
    if len(structures) > 254:
        raise ValueError("at most 254 structures fit a uint8 label map")
    labels = np.zeros((z.size, y.size, x.size), dtype=np.uint8)
    for i, s in enumerate(structures):
        shp = s.shape.shifted(shift_mm)
        lo, hi = shp.bounds_mm()
        sz, sy, sx = (
            _index_range(z, lo[2], hi[2]),
            _index_range(y, lo[1], hi[1]),
            _index_range(x, lo[0], hi[0]),
        )
        zz, yy, xx = z[sz], y[sy], x[sx]
        if not (zz.size and yy.size and xx.size):
            continue
        inside = shp.contains(
            xx[np.newaxis, np.newaxis, :],
            yy[np.newaxis, :, np.newaxis],
            zz[:, np.newaxis, np.newaxis],
        )
        view = labels[sz, sy, sx]
        view[inside] = i + 1
    return labels


def _structures(
    rng: np.random.Generator,
    anatomy_jitter: float,
    lesions: Sequence[tuple[str, tuple[float, float, float], float]],
    head_and_neck: bool = True,
) -> tuple[Structure, ...]:
    def j(*semi: float) -> tuple[float, ...]:
        if anatomy_jitter == 0.0:
            return semi
        f = 1.0 + anatomy_jitter * rng.uniform(-1.0, 1.0)
        return tuple(s * f for s in semi)

    def ell(center: tuple[float, float, float], semi: tuple[float, ...], angle: float = 0.0):
        return Ellipsoid(center, (semi[0], semi[1], semi[2]), angle)

    half_z = 160.0
    spine = EllipticCylinder((0.0, 75.0), (17.0, 17.0), -half_z, half_z)
    torso_skin = EllipticCylinder((0.0, 0.0), (160.0, 110.0), -half_z, half_z)
    torso_inner = EllipticCylinder((0.0, 0.0), (145.0, 95.0), -half_z, half_z)
    body: Shape = torso_skin
    inner: Shape = torso_inner
    if head_and_neck:
        body = StackedCylinders(
            (
                torso_skin,
                EllipticCylinder((0.0, 20.0), (60.0, 55.0), half_z, 180.0),  # neck
                EllipticCylinder((0.0, 5.0), (75.0, 95.0), 180.0, 250.0),  # head
            )
        )
        inner = StackedCylinders(
            (
                torso_inner,
                EllipticCylinder((0.0, 20.0), (52.0, 47.0), half_z, 180.0),
                EllipticCylinder((0.0, 5.0), (69.0, 89.0), 180.0, 250.0),
            )
        )
    out = [
        Structure("body", body, -100.0, 0.95, "EXTERNAL", (0, 255, 0)),
        Structure("soft_tissue", inner, 40.0, 1.05, None),
        Structure("vertebral_column", spine, 700.0, 1.42, "ORGAN", (255, 255, 255)),
        Structure(
            "lung_right",
            ell((-75.0, 0.0, 75.0), j(55.0, 72.0, 75.0)),
            -760.0,
            0.26,
            "ORGAN",
            (0, 128, 255),
        ),
        Structure(
            "lung_left",
            ell((78.0, 0.0, 75.0), j(50.0, 72.0, 75.0)),
            -760.0,
            0.26,
            "ORGAN",
            (0, 200, 255),
        ),
        Structure(
            "liver",
            ell((-50.0, -15.0, -50.0), j(80.0, 65.0, 50.0)),
            60.0,
            1.06,
            "ORGAN",
            (165, 80, 40),
        ),
        Structure(
            "spleen",
            ell((90.0, 30.0, -35.0), j(32.0, 28.0, 38.0), 20.0),
            50.0,
            1.06,
            "ORGAN",
            (160, 30, 200),
        ),
        Structure(
            "kidney_right",
            ell((-70.0, 52.0, -115.0), j(32.0, 24.0, 44.0), -15.0),
            35.0,
            1.05,
            "ORGAN",
            (255, 160, 0),
        ),
        Structure(
            "kidney_left",
            ell((70.0, 52.0, -115.0), j(32.0, 24.0, 44.0), 15.0),
            35.0,
            1.05,
            "ORGAN",
            (255, 200, 0),
        ),
    ]
    if head_and_neck:
        r_m = j(12.0)[0]
        out.append(
            Structure(
                "red_marrow",
                EllipticCylinder((0.0, 75.0), (r_m, r_m), -155.0, -35.0),
                700.0,
                1.42,
                "ORGAN",
                (200, 0, 60),
                "image-based red marrow: lumbar vertebral bodies",
            )
        )
        glands = (
            ("parotid", (50.0, 25.0, 210.0), (12.0, 20.0, 22.0), (255, 120, 180)),
            ("submandibular", (32.0, -30.0, 195.0), (11.0, 14.0, 11.0), (255, 170, 210)),
            ("lacrimal", (30.0, -62.0, 236.0), (8.0, 5.0, 4.0), (120, 220, 255)),
        )
        for gland, (cx, cy, cz), semi, color in glands:
            for side, sign in (("right", -1.0), ("left", 1.0)):
                out.append(
                    Structure(
                        f"{gland}_{side}",
                        ell((sign * cx, cy, cz), j(*semi)),
                        35.0,
                        1.05,
                        "ORGAN",
                        color,
                    )
                )
    for name, center, diameter in lesions:
        if diameter <= 0:
            raise ValueError(f"lesion {name!r}: diameter_mm must be > 0, got {diameter}")
        r = 0.5 * float(diameter)
        c = (float(center[0]), float(center[1]), float(center[2]))
        in_bone = bool(spine.contains(np.array(c[0]), np.array(c[1]), np.array(c[2])))
        hu, rho = (700.0, 1.42) if in_bone else (45.0, 1.05)
        out.append(Structure(name, Ellipsoid(c, (r, r, r)), hu, rho, "GTV", (255, 0, 0)))
    names = [s.name for s in out]
    if len(set(names)) != len(names):
        raise ValueError(f"structure names must be unique, got {names}")
    return tuple(out)


def make_torso(
    seed: int = 0,
    *,
    voxel_mm: float | tuple[float, float, float] = 2.0,
    fov_mm: tuple[float, float, float] | None = None,
    lesions: Sequence[tuple[str, tuple[float, float, float], float]] | None = None,
    anatomy_jitter: float = 0.0,
    head_and_neck: bool = True,
    fov_center_z_mm: float | None = None,
) -> TorsoPhantom:
    """Build the anthropomorphic torso phantom on a fine "truth" grid.

    Parameters
    ----------
    seed
        Seed of the random anatomy variation (only used when ``anatomy_jitter > 0``).
        The phantom is a deterministic function of all arguments.
    voxel_mm
        Truth-grid spacing (mm): one number, or ``(slice, row, column)``.
    fov_mm
        Extent (mm) of the truth grid along (z, y, x); default
        :data:`DEFAULT_FOV_MM` (the whole body: 412 mm long with the head and neck,
        320 mm without).
    fov_center_z_mm
        LPS z (mm) of the grid centre (x and y are centred on 0); default 44 mm with the
        head and neck, 0 without.
    lesions
        ``(name, LPS centre mm, diameter mm)`` of each spherical lesion; default
        :data:`DEFAULT_LESIONS` (30, 20, 12 and 8 mm). A lesion centred in the vertebral
        column gets bone HU and density.
    anatomy_jitter
        Relative size variation of the organs (0.05 = +-5 % on each organ's semi-axes,
        drawn from ``seed``). 0 gives the nominal anatomy.
    head_and_neck
        Add the neck and head with the parotid, submandibular and lacrimal glands, and
        the red-marrow region in the lumbar spine (default). ``False`` builds the torso
        alone (faster; the phantom of earlier versions).

    Returns
    -------
    TorsoPhantom
        Analytic structures and their noise-free rasterisation (HU, g/mL, masks, labels).

    Examples
    --------
    >>> ph = make_torso(voxel_mm=4.0)
    >>> ph.ct_hu.unit, ph.ct_hu.spacing_mm
    ('HU', (4.0, 4.0, 4.0))
    >>> ph.organ_names[:3], ph.ct_hu.shape
    (['body', 'vertebral_column', 'lung_right'], (103, 64, 88))
    >>> ph.organ_names[-11:-4]
    ['red_marrow', 'parotid_right', 'parotid_left', 'submandibular_right', 'submandibular_left', 'lacrimal_right', 'lacrimal_left']
    >>> round(ph.analytic_volume_ml("lesion_1"), 2)  # 30 mm sphere
    14.14
    """
    if isinstance(voxel_mm, int | float):
        sp: tuple[float, ...] = (float(voxel_mm),) * 3
    else:
        sp = tuple(float(v) for v in voxel_mm)
    if len(sp) != 3 or any(not math.isfinite(v) or v <= 0 for v in sp):
        raise ValueError(f"voxel_mm must be positive (one value or three), got {voxel_mm!r}")
    if not 0.0 <= anatomy_jitter <= 0.2:
        raise ValueError(f"anatomy_jitter must lie in [0, 0.2], got {anatomy_jitter}")
    rng = np.random.default_rng(seed)
    structures = _structures(
        rng, anatomy_jitter, DEFAULT_LESIONS if lesions is None else lesions, head_and_neck
    )
    default_fov, default_center_z = DEFAULT_FOV_MM[bool(head_and_neck)]
    fov = default_fov if fov_mm is None else tuple(float(v) for v in fov_mm)
    if len(fov) != 3 or any(not math.isfinite(v) or v <= 0 for v in fov):
        raise ValueError(f"fov_mm must be three positive extents (z, y, x) in mm, got {fov_mm!r}")
    center_z = default_center_z if fov_center_z_mm is None else float(fov_center_z_mm)
    shape = tuple(max(1, int(round(f / s))) for f, s in zip(fov, sp, strict=True))
    shape3 = (shape[0], shape[1], shape[2])
    oz, oy, ox = (-(n - 1) / 2.0 * s for n, s in zip(shape3, sp, strict=True))
    oz += center_z
    affine = axial_affine((sp[0], sp[1], sp[2]), (ox, oy, oz))
    z, y, x = axial_grid_axes(affine, shape3)
    labels = _paint(structures, z, y, x, (0.0, 0.0, 0.0))
    hu_lut = np.array([AIR_HU, *(s.hu for s in structures)], dtype=np.float32)
    rho_lut = np.array([AIR_DENSITY_G_PER_ML, *(s.density_g_per_ml for s in structures)])
    masks = {s.name: Volume(_shape_mask(s.shape, z, y, x), affine, "1") for s in structures}
    lesion_names = [s.name for s in structures if s.roi_type == "GTV"]
    diam = {
        s.name: 2.0 * s.shape.semi_axes_mm[0]
        for s in structures
        if s.roi_type == "GTV" and isinstance(s.shape, Ellipsoid)
    }
    return TorsoPhantom(
        structures=structures,
        ct_hu=Volume(hu_lut[labels], affine, "HU"),
        density=Volume(rho_lut[labels].astype(np.float32), affine, "g/mL"),
        masks=masks,
        labels=Volume(labels, affine, "1"),
        organ_names=[s.name for s in structures if s.roi_type is not None],
        lesion_names=lesion_names,
        lesion_diameters_mm=diam,
        seed=int(seed),
    )
