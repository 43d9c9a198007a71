"""The optional deformable stage, and the QA figure."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
import SimpleITK as sitk
from matplotlib.figure import Figure

from dosimetry.registration import register_ct, registration_qa


@pytest.fixture(scope="module")
def tiny(make_ct):
    shape = (26, 30, 36)  # 4 mm voxels; the body fits in the field of view
    return make_ct(shape, 4.0), make_ct(shape, 4.0, translation_mm=(3.0, -2.0, 2.0), seed=1)


def test_deformable_runs_on_a_tiny_case(tiny):
    fixed, moving = tiny
    small = {"bspline_mesh_size": 2, "bspline_iterations": 10, "min_samples": 4000}
    rigid = register_ct(fixed, moving, cache=None, min_samples=4000)
    reg = register_ct(fixed, moving, method="deformable", cache=None, **small)
    assert reg.method == "deformable"
    assert isinstance(reg.transform, sitk.CompositeTransform)
    assert reg.transform.GetNumberOfTransforms() == 2  # rigid, then B-spline
    assert "bspline" in reg.stop_condition
    # the rigid part is the rigid registration; the B-spline does not make things worse
    np.testing.assert_allclose(reg.translation_mm, rigid.translation_mm, atol=1e-9)
    assert reg.ncc_after >= rigid.ncc_after - 0.01
    assert reg.provenance["registration"]["bspline_mesh_size"] == [2, 2, 2]
    # "bspline" is still accepted, as the same method
    alias = register_ct(fixed, moving, method="bspline", cache=None, **small)
    assert alias.method == "deformable"


def test_qa_figure_without_pyplot_state(tiny, make_ct):
    fixed = tiny[0]
    moving = make_ct(fixed.shape, 4.0, translation_mm=(9.0, -7.0, 6.0), seed=2)
    reg = register_ct(fixed, moving, cache=None)
    before = plt.get_fignums()
    qa = registration_qa(reg, moving, axis=1)
    fig = qa.figure()
    assert isinstance(fig, Figure)
    assert plt.get_fignums() == before  # not registered with pyplot
    assert len(fig.axes) == 3
    assert "NCC" in fig.texts[0].get_text()  # the similarity numbers are in the title
    assert qa.mean_abs_diff_hu_after < 0.5 * qa.mean_abs_diff_hu_before
    assert qa.ncc_after == reg.ncc_after and math.isfinite(qa.ncc_before)
    assert qa.fixed.shape == qa.moved.shape == (fixed.shape[0], fixed.shape[2])
    # the registered slice matches the fixed slice better than the unregistered one
    err_after = np.abs(qa.moved - qa.fixed).mean()
    err_before = np.abs(qa.unregistered - qa.fixed).mean()
    assert err_after < 0.75 * err_before
