"""Volume <-> SimpleITK: geometry checked against ITK's own index -> physical mapping."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from dosimetry import Volume
from dosimetry.errors import GeometryMismatchError
from dosimetry.io import sitk_to_volume, volume_to_sitk


def _rotation(a, b, c):
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return rz @ ry @ rx


@pytest.fixture
def oblique():
    rng = np.random.default_rng(3)
    arr = rng.normal(size=(3, 4, 5))
    return Volume.from_spacing(
        arr,
        (3.0, 2.0, 1.5),
        (10.0, -20.0, 30.0),
        _rotation(0.2, -0.4, 0.7),
        unit="Bq/mL",
        frame_of_reference_uid="1.2.3",
    )


def test_index_to_physical_agrees_with_itk(oblique):
    img = volume_to_sitk(oblique)
    assert img.GetSize() == (5, 4, 3)
    for k, j, i in [(0, 0, 0), (2, 3, 4), (1, 0, 3), (2, 1, 0)]:
        itk_point = img.TransformIndexToPhysicalPoint((i, j, k))  # ITK index is (x, y, z)
        np.testing.assert_allclose(itk_point, oblique.index_to_world([k, j, i]), atol=1e-9)
        assert img.GetPixel(i, j, k) == oblique.array[k, j, i]


def test_round_trip(oblique):
    back = sitk_to_volume(volume_to_sitk(oblique))
    np.testing.assert_array_equal(back.array, oblique.array)
    np.testing.assert_allclose(back.affine, oblique.affine, atol=1e-12)
    assert back.unit == "Bq/mL" and back.frame_of_reference_uid == "1.2.3"


def test_itk_resampling_matches_identity_transform(oblique):
    """An identity resample in ITK onto the same grid returns the same values."""
    img = volume_to_sitk(oblique)
    out = sitk.Resample(img, img, sitk.Transform(), sitk.sitkLinear, 0.0)
    np.testing.assert_allclose(sitk_to_volume(out).array, oblique.array, atol=1e-12)


def test_bool_and_errors():
    mask = Volume.from_spacing(np.zeros((2, 2, 2), dtype=bool), (1, 1, 1))
    assert volume_to_sitk(mask).GetPixelID() == sitk.sitkUInt8
    with pytest.raises(GeometryMismatchError, match="3-D"):
        sitk_to_volume(sitk.Image(4, 4, sitk.sitkFloat32))
    with pytest.raises(GeometryMismatchError, match="scalar"):
        sitk_to_volume(sitk.Image([2, 2, 2], sitk.sitkVectorFloat32, 3))
