"""notebook_logging: one handler however often it is called, readable notices."""

from __future__ import annotations

import logging

import pytest

import dosimetry.viewer as viewer
from dosimetry.viewer import NotebookNoticeHandler, notebook_logging


@pytest.fixture
def restore_logger():
    lg = logging.getLogger("dosimetry")
    state = (list(lg.handlers), lg.propagate, lg.level)
    yield lg
    lg.handlers[:] = state[0]
    lg.propagate, lg.level = state[1], state[2]


def _ours(lg):
    return [h for h in lg.handlers if isinstance(h, NotebookNoticeHandler)]


def test_idempotent_and_reversible(restore_logger):
    lg = restore_logger
    assert notebook_logging() is None  # a cell ending with the call shows nothing
    (first,) = _ours(lg)
    notebook_logging("INFO")
    (second,) = _ours(lg)  # replaced, not added
    assert first is not second
    assert second.level == logging.INFO and lg.getEffectiveLevel() <= logging.INFO
    assert lg.propagate is False  # no second, raw copy through the root logger
    assert notebook_logging(enable=False) is None
    assert _ours(lg) == [] and lg.propagate is True
    with pytest.raises(viewer.InputDataError, match="level='LOUD'"):
        notebook_logging("LOUD")


def test_plain_stderr_outside_ipython(restore_logger, capsys):
    notebook_logging("WARNING")
    logging.getLogger("dosimetry.dose").warning("kernel %s cropped", "x")
    logging.getLogger("dosimetry.dose").info("not shown")
    err = capsys.readouterr().err
    assert err == "WARNING dosimetry.dose: kernel x cropped\n"


def test_html_notice_in_a_kernel(restore_logger, monkeypatch):
    shown = []
    monkeypatch.setattr(viewer, "_in_kernel", lambda: True)
    monkeypatch.setattr("IPython.display.display", lambda obj, raw=False: shown.append((obj, raw)))
    notebook_logging()
    logging.getLogger("dosimetry.io").warning("ROI <script>x</script> has no contour")
    ((bundle, raw),) = shown
    assert raw is True
    assert "&lt;script&gt;" in bundle["text/html"] and "<script>" not in bundle["text/html"]
    assert "Warning" in bundle["text/html"] and "dosimetry-warning" in bundle["text/html"]
    assert bundle["text/plain"] == "WARNING dosimetry.io: ROI <script>x</script> has no contour"
