"""Viewer: slice orientation (exact) and that every figure/widget builds."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

import dosimetry as ds  # noqa: E402
from dosimetry.viewer import dvh_plot, extract_slice, fused_slice, slice_viewer, tac_plot  # noqa: E402

# axial DICOM: slice axis +S, rows +P, columns +L (LPS)
AXIAL = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])


def _grid(direction=AXIAL, shape=(6, 8, 10)):
    k, j, i = np.indices(shape)
    return ds.Volume.from_spacing(
        1000.0 * k + 10.0 * j + i, (3.0, 2.0, 2.0), direction=direction, unit="Bq/mL"
    )


def test_axial_slice_is_the_stored_slice_for_standard_orientation():
    v = _grid()
    img = extract_slice(v.array, v, "axial", 2)
    # rows run anterior->posterior (increasing j), columns patient right->left (increasing i)
    np.testing.assert_array_equal(img, v.array[2])


def test_axial_slice_flips_a_reversed_row_axis():
    d = AXIAL.copy()
    d[:, 1] *= -1  # rows now run posterior->anterior
    v = _grid(d)
    img = extract_slice(v.array, v, "axial", 1)
    np.testing.assert_array_equal(img, v.array[1, ::-1, :])


def test_coronal_and_sagittal_put_superior_at_the_top():
    v = _grid()
    cor = extract_slice(v.array, v, "coronal", 3)  # fixed row j = 3
    assert cor.shape == (6, 10)
    np.testing.assert_array_equal(cor, v.array[::-1, 3, :])
    sag = extract_slice(v.array, v, "sagittal", 4)  # fixed column i = 4
    assert sag.shape == (6, 8)
    np.testing.assert_array_equal(sag, v.array[::-1, :, 4])


def test_slice_index_out_of_range():
    v = _grid()
    with pytest.raises(ds.DosimetryError, match="outside"):
        extract_slice(v.array, v, "axial", 6)


def test_figures_build():
    v = _grid()
    ct = v.with_array(np.zeros(v.shape), unit="HU")
    mask = v.with_array(v.array > 3000, unit="1")
    fig = fused_slice(v, ct, masks={"m": mask}, isodoses=[2000.0])
    assert fig.axes
    plt.close(fig)
    dose = v.with_array(v.array / 1000.0, unit="Gy")
    fig = dvh_plot({"m": ds.dvh(dose, mask)})
    assert fig.axes[0].get_lines()
    plt.close(fig)
    fit = ds.fit_tac([24, 48, 96, 168], [100.0, 80.0, 50.0, 25.0], model="mono")
    fig = tac_plot({"kidney": fit})
    # measured points, fitted curve over the measured interval, its head/tail (dashed)
    assert [ln.get_linestyle() for ln in fig.axes[0].get_lines()] == ["None", "-", "--"]
    plt.close(fig)


def test_mask_on_another_grid_is_refused():
    v = _grid()
    other = ds.Volume.from_spacing(np.zeros((2, 2, 2)), (1, 1, 1), unit="1")
    with pytest.raises(ds.GeometryMismatchError):
        fused_slice(v, masks={"m": other})


def test_slice_viewer_widget():
    import ipywidgets as w

    v = _grid()
    widget = slice_viewer(v)
    assert isinstance(widget, w.VBox)
    plt.close("all")
