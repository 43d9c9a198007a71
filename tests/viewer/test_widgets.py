"""Widgets: sliders change the rendered image, linked cursor, clamping, clicks, VOI jumps."""

from __future__ import annotations

import logging

import ipywidgets as w
import numpy as np
import pytest

import dosimetry as ds
from dosimetry.viewer import dvh_widget, ortho_viewer, slice_viewer, tac_widget

from .conftest import small_case

DPI = 30  # small images keep the tests fast


def test_slider_moves_the_cursor_and_changes_the_image(case):
    dose, ct, masks = case
    widget = ortho_viewer(dose, ct, masks=masks, isodoses=[5.0], dpi=DPI)
    assert isinstance(widget, w.VBox)
    v = widget.viewer
    before_png, before_text = v.image.value, v.cursor_text()
    assert bytes(before_png).startswith(b"\x89PNG")
    k, j, i = v.index
    v.sliders["axial"].value = 0 if k else 1  # the axial slider moves the slice index
    assert v.index == (0 if k else 1, j, i)
    assert v.image.value != before_png
    assert v.cursor_text() != before_text
    z_mm = dose.index_to_world(np.array(v.index, dtype=float))[2]
    assert f"{z_mm:.1f}" in v.cursor_text()  # readout in mm (LPS)
    assert v.sliders["axial"].label == f"z = {z_mm:+.1f} mm"  # slider labelled in mm
    # style controls redraw too
    for control, value in [(v.opacity, 0.9), (v.threshold, 8.0), (v.scale_selector, "log")]:
        png = v.image.value
        control.value = value
        assert v.image.value != png


def test_cursor_readout_gives_value_with_unit_and_vois(case):
    dose, ct, masks = case
    centre = tuple(int(x) for x in (np.array(dose.shape) - 1) // 2)
    widget = ortho_viewer(dose, ct, masks=masks, cursor_mm=dose.index_to_world(centre), dpi=DPI)
    v = widget.viewer
    assert v.index == centre
    text = v.cursor_text()
    assert f"absorbed dose: {dose.array[centre]:.4g} Gy" in text
    assert f"background: {ct.array[centre]:.4g} HU" in text
    assert "in: tumour" in text


def test_plane_change_keeps_the_index_in_range():
    # 12 axial slices but only 5 rows: axial index 11 is out of range for the coronal view
    dose, ct, masks = small_case(shape=(12, 5, 7))
    v = slice_viewer(dose, ct, masks=masks, dpi=DPI).viewer
    v.sliders["axial"].value = 11
    assert v.index[0] == 11
    png = v.image.value
    v.view_selector.value = "coronal"
    assert v.views == ("coronal",)
    assert v._nav.children[1] is v.sliders["coronal"]
    assert 0 <= v.sliders["coronal"].value < 5 and v.slice_index("coronal") < 5
    assert v.image.value != png
    (ax,) = [a for a in v._last_fig.axes if (a.get_gid() or "").startswith("view-")]
    assert ax.get_gid() == "view-coronal"
    assert ax.get_images()[-1].get_array().count() > 0  # the coronal slice shows dose
    v.set_cursor_index((100, -3, 100))
    assert v.index == (11, 0, 6)  # clamped into the grid


def test_click_moves_the_cursor_to_the_voxel_under_the_mouse(case):
    dose, ct, masks = case
    v = ortho_viewer(dose, ct, masks=masks, dpi=DPI).viewer
    target = (v.index[0], 2, 9)  # same axial slice, another row and column
    x_mm, y_mm, _ = dose.index_to_world(np.array(target, dtype=float))
    ax = v._last_axes["axial"]
    xd, yd = ax.transData.transform((x_mm, y_mm))
    height = v._last_fig.bbox.height
    assert v.click(xd, height - yd)  # image pixels, origin top-left
    assert v.index == target
    assert not v.click(1.0, 1.0)  # the figure corner is on no view


def test_jump_to_voi_goes_inside_the_voi(case, caplog):
    dose, ct, masks = case
    masks = {**masks, "empty": dose.with_array(np.zeros(dose.shape), unit="1")}
    v = ortho_viewer(dose, ct, masks=masks, dpi=DPI).viewer
    assert [o[1] for o in v.voi_selector.options][1:] == list(masks)
    v.voi_selector.value = "shell"  # hollow: the centre of mass is outside it
    assert masks["shell"].array[v.index]
    before = v.index
    with caplog.at_level(logging.WARNING, logger="dosimetry"):
        v.jump_to("empty")
    assert v.index == before and "empty" in caplog.text
    with pytest.raises(ds.InputDataError, match="voi='liver'"):
        v.jump_to("liver")


def test_window_presets_and_custom_range(case):
    dose, ct, _ = case
    v = ortho_viewer(dose, ct, dpi=DPI).viewer
    assert v.window_preset.value == "soft tissue"
    assert v.window_range.value == (-160.0, 240.0)  # L 40 -/+ W/2 (400)
    v.window_preset.value = "bone"
    assert v.window_range.value == (-770.0, 1730.0)  # L 480 -/+ W/2 (2500)
    png = v.image.value
    v.window_range.value = (-500.0, 500.0)
    assert v.window_preset.value == "custom" and v.image.value != png
    pet = dose.with_array(np.abs(dose.array) * 1000.0, unit="Bq/mL")
    v = ortho_viewer(dose, pet, dpi=DPI).viewer
    assert v.window_preset.value == "0..max"
    assert v.window_range.value[1] == pytest.approx(float(pet.array.max()), rel=1e-3)


def test_dvh_widget_checkboxes_change_the_plot(case):
    dose, _, masks = case
    masks = {"<b>shell</b>": masks["shell"], "tumour": masks["tumour"]}
    v = dvh_widget(dose, masks, dpi=DPI).viewer
    png = v.image.value
    v.checkboxes["tumour"].value = False
    assert v.selected() == ["<b>shell</b>"] and v.image.value != png
    assert "&lt;b&gt;shell&lt;/b&gt;" in v.table.value and "<b>shell" not in v.table.value
    png = v.image.value
    v.volume_mode.value = "ml"
    assert v.image.value != png


def test_tac_widget_log_axis_and_summary():
    fits = {
        "kidney": ds.fit_tac([24, 48, 96, 168], [100.0, 80.0, 50.0, 25.0], model="mono"),
        "lesion": ds.fit_tac([24, 48, 96, 168], [40.0, 38.0, 30.0, 20.0], model="mono"),
    }
    v = tac_widget(fits, dpi=DPI).viewer
    png = v.image.value
    v.yscale.value = "log"
    assert v.image.value != png
    assert "kidney" in v.summary.value and "TAC fit: model=mono" in v.summary.value
    v.checkboxes["kidney"].value = False
    assert "kidney" not in v.summary.value
