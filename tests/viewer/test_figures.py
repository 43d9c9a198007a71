"""Static figures: PNG with Agg, no pyplot state, colour bar/legend/isodose labels."""

from __future__ import annotations

import base64

import matplotlib.pyplot as plt
import numpy as np
import pytest

import dosimetry as ds
from dosimetry.viewer import (
    CT_WINDOWS,
    bland_altman_figure,
    bland_altman_limits,
    dvh_figure,
    figure_to_data_uri,
    figure_to_png,
    tac_figure,
    three_plane_figure,
    voi_colors,
)

from .conftest import small_case

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _texts(fig, gid):
    return [t.get_text() for ax in fig.axes for t in ax.texts if t.get_gid() == gid]


def test_three_plane_figure_renders_without_pyplot(case):
    dose, ct, masks = case
    before = plt.get_fignums()
    fig = three_plane_figure(dose, ct, masks=masks, isodoses=[5.0, 15.0], title="t", dpi=40)
    assert fig._repr_png_().startswith(PNG_SIGNATURE)  # shows itself in Jupyter (tight PNG)
    assert plt.get_fignums() == before  # nothing registered with pyplot
    views = [ax.get_gid() for ax in fig.axes if (ax.get_gid() or "").startswith("view-")]
    assert views == ["view-axial", "view-coronal", "view-sagittal"]
    for ax in fig.axes:
        if ax.get_gid() in views:
            assert ax.get_xlabel().endswith("(mm)") and ax.get_ylabel().endswith("(mm)")
            assert ax.get_title().endswith(" mm")  # slice position


def test_colour_bar_carries_the_unit(case):
    dose, ct, masks = case
    fig = three_plane_figure(dose, ct, dpi=40)
    (cbar,) = [ax for ax in fig.axes if ax.get_gid() == "colorbar"]
    assert cbar.get_ylabel() == "absorbed dose (Gy)"
    fig = three_plane_figure(dose, unit_label="dose (Gy_RBE)", dpi=40)
    (cbar,) = [ax for ax in fig.axes if ax.get_gid() == "colorbar"]
    assert cbar.get_ylabel() == "dose (Gy_RBE)"


def test_legend_entries_are_the_mask_names_in_order(case):
    dose, ct, masks = case
    masks = {"liver <b>": masks["shell"], "tumour": masks["tumour"]}
    fig = three_plane_figure(dose, ct, masks=masks, dpi=40)
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == list(masks)
    colours = voi_colors(list(masks))
    handles = legend.legend_handles
    assert [tuple(h.get_color()) for h in handles] == [colours[n] for n in masks]
    assert len(set(colours.values())) == 2
    assert not three_plane_figure(dose, dpi=40).legends  # no masks, no legend


def test_isodose_lines_are_labelled_in_gy_and_in_percent(case):
    dose, _, _ = case
    fig = three_plane_figure(dose, isodoses=[2.0, 10.0], dpi=40)
    labels = _texts(fig, "isodose-label")
    assert "2 Gy" in [s.strip() for s in labels] and "10 Gy" in [s.strip() for s in labels]
    fig = three_plane_figure(dose, isodoses=[50.0], isodose_reference=20.0, dpi=40)
    assert {s.strip() for s in _texts(fig, "isodose-label")} == {"50 %"}
    # a level above the maximum draws nothing and warns nothing (filterwarnings=error)
    fig = three_plane_figure(dose, isodoses=[1000.0], dpi=40)
    assert _texts(fig, "isodose-label") == []


def test_threshold_hides_low_values_and_log_scale(case):
    dose, ct, _ = case
    fig = three_plane_figure(dose, ct, threshold=5.0, dpi=40)
    ax = next(a for a in fig.axes if a.get_gid() == "view-axial")
    wash = ax.get_images()[-1].get_array()
    shown = wash.compressed()
    assert shown.size and shown.min() >= 5.0  # nothing below the threshold is drawn
    fig = three_plane_figure(dose, ct, scale="log", threshold=0.2, dpi=40)
    (cbar,) = [a for a in fig.axes if a.get_gid() == "colorbar"]
    assert cbar.get_yscale() == "log"
    with pytest.raises(ds.InputDataError, match="threshold"):
        three_plane_figure(dose, scale="log", threshold=0.0)


def test_ct_window_presets_and_errors(case):
    dose, ct, masks = case
    assert CT_WINDOWS["soft tissue"] == (400.0, 40.0)  # W/L, OHIF default preset
    fig = three_plane_figure(dose, ct, window="lung", dpi=40)
    ax = next(a for a in fig.axes if a.get_gid() == "view-axial")
    assert ax.get_images()[0].get_clim() == (-1350.0, 150.0)  # L -600 -/+ W/2 (1500)
    with pytest.raises(ds.InputDataError, match="window='brain'"):
        three_plane_figure(dose, ct, window="brain")
    with pytest.raises(ds.InputDataError, match="cmap='jett'"):
        three_plane_figure(dose, cmap="jett")
    with pytest.raises(ds.InputDataError, match="outside the overlay grid"):
        three_plane_figure(dose, cursor_mm=(1e4, 0.0, 0.0))
    other = ds.Volume.from_spacing(np.zeros((2, 2, 2)), (1.0, 1.0, 1.0), unit="1")
    with pytest.raises(ds.GeometryMismatchError, match="mask 'x'"):
        three_plane_figure(dose, masks={"x": other})


def test_background_on_another_grid_is_resampled(case):
    dose, ct, _ = case
    fine = ds.resample(ct, ds.Volume(np.zeros((18, 20, 24)), _half_spacing(ct), "HU"), "mask")
    fig = three_plane_figure(dose, fine, views=("axial",), dpi=40)
    ax = next(a for a in fig.axes if a.get_gid() == "view-axial")
    assert ax.get_images()[0].get_array().shape == ax.get_images()[-1].get_array().shape


def _half_spacing(v):
    a = np.array(v.affine)
    a[:3, :3] /= 2.0
    return a


def test_dvh_figure(case):
    dose, _, masks = case
    dvhs = {n: ds.dvh(dose, m, name=n) for n, m in masks.items()}
    fig = dvh_figure(dvhs)
    ax = fig.axes[0]
    lines = ax.get_lines()
    assert len(lines) == 2
    for line in lines:
        y = line.get_ydata()
        assert y[0] == pytest.approx(100.0, abs=1e-9) and np.all(np.diff(y) <= 1e-12)
    assert [t.get_text().split(" (")[0] for t in ax.get_legend().get_texts()] == list(masks)
    assert ax.get_xlabel() == "dose (Gy)" and ax.get_ylabel() == "volume (%)"
    fig = dvh_figure(dvhs, volume="ml")
    assert fig.axes[0].get_ylabel() == "volume (mL)"


def test_tac_figure_points_curves_and_log_axis():
    fits = {
        "kidney": ds.fit_tac([24, 48, 96, 168], [100.0, 80.0, 50.0, 25.0], model="mono"),
        "lesion": ds.fit_tac([4, 24, 96, 168], [20.0, 40.0, 30.0, 12.0], model="mono"),
    }
    fig = tac_figure(fits, yscale="log")
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    (pts,) = [c for c in ax.containers][:1]  # errorbar container of the first fit
    np.testing.assert_allclose(pts.lines[0].get_xdata(), [24, 48, 96, 168], rtol=0, atol=1e-12)
    np.testing.assert_allclose(pts.lines[0].get_ydata(), [100, 80, 50, 25], rtol=1e-12)
    assert [t.get_text().split(" (")[0] for t in ax.get_legend().get_texts()] == list(fits)
    fig = tac_figure(fits["kidney"], time_unit="d")
    assert fig.axes[0].get_xlabel() == "time after administration (d)"
    with pytest.raises(ds.UnitError, match="time_unit='weeks'"):
        tac_figure(fits, time_unit="weeks")


def test_bland_altman_limits_by_hand():
    # differences 0.5, 0, 0.5: mean 1/3, sample SD sqrt(1/12) (worked by hand)
    r = bland_altman_limits([1.0, 2.0, 3.0], [1.5, 2.0, 3.5])
    assert r["bias"] == pytest.approx(1.0 / 3.0, rel=1e-12)
    assert r["sd"] == pytest.approx(np.sqrt(1.0 / 12.0), rel=1e-12)
    assert r["upper"] == pytest.approx(1.0 / 3.0 + 1.96 * np.sqrt(1.0 / 12.0), rel=1e-12)
    rel = bland_altman_limits([1.0, 3.0], [3.0, 1.0], relative=True)
    np.testing.assert_allclose(rel["difference"], [100.0, -100.0], rtol=1e-12)
    with pytest.raises(ds.InputDataError, match="at least 2"):
        bland_altman_limits([1.0], [1.0])
    with pytest.raises(ds.InputDataError, match="same length"):
        bland_altman_limits([1.0, 2.0], [1.0])


def test_bland_altman_figure_draws_bias_and_limits():
    ref, test = [1.0, 2.0, 3.0, 4.0], [1.2, 1.9, 3.3, 4.1]
    fig = bland_altman_figure(ref, test, ["a", "b", "c", "d"], reference_name="measured")
    ax = fig.axes[0]
    r = bland_altman_limits(ref, test)
    levels = sorted(
        float(line.get_ydata()[0]) for line in ax.get_lines() if line.get_ydata()[0] != 0.0
    )
    np.testing.assert_allclose(levels, [r["lower"], r["bias"], r["upper"]], rtol=1e-12)
    assert {t.get_text() for t in ax.texts} >= {"a", "b", "c", "d"}
    assert "measured" in ax.get_xlabel()
    with pytest.raises(ds.InputDataError, match="labels"):
        bland_altman_figure(ref, test, ["a"])


def test_every_figure_renders_to_png_with_agg(case):
    dose, ct, masks = small_case(direction=np.eye(3))  # permuted affine
    fits = {"k": ds.fit_tac([24, 48, 96], [100.0, 80.0, 50.0], model="mono")}
    figures = [
        three_plane_figure(dose, ct, masks=masks, isodoses=[5.0], dpi=40),
        dvh_figure({n: ds.dvh(dose, m) for n, m in masks.items()}, dpi=40),
        tac_figure(fits, dpi=40),
        bland_altman_figure([1.0, 2.0, 3.0], [1.1, 2.2, 2.9], dpi=40),
    ]
    for fig in figures:
        assert figure_to_png(fig, tight=False).startswith(PNG_SIGNATURE)
    uri = figure_to_data_uri(figures[-1], dpi=20)
    assert base64.b64decode(uri.removeprefix("data:image/png;base64,")).startswith(PNG_SIGNATURE)
