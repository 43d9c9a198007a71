"""Complete-or-nothing output sets (manifest last, atomic swap, nothing of the user's lost)."""

from __future__ import annotations

import json
import os
import stat

import pytest

from dosimetry.errors import OutputError
from dosimetry.io.outputs import MANIFEST, OutputSet, is_complete, read_manifest, write_documents


def _write(out, **kw):
    with OutputSet(out, **kw) as staging:
        (staging / "a.txt").write_text("a")
        write_documents(staging, {"figures/b.png": b"\x89PNG"})
    return out


def test_set_written_with_manifest_and_hashes(tmp_path):
    out = _write(tmp_path / "out")
    m = read_manifest(out)
    assert m["status"] == "complete" and {f["path"] for f in m["files"]} == {
        "a.txt",
        "figures/b.png",
    }
    assert is_complete(out, verify_hashes=True)
    (out / "a.txt").write_text("changed")
    assert not is_complete(out, verify_hashes=True)


def test_refusals_happen_before_anything_is_created(tmp_path):
    study = tmp_path / "study"
    study.mkdir()
    with pytest.raises(OutputError, match="inside the input folder"):
        OutputSet(study / "out", input_dirs=[study])
    assert not (study / "out").exists()
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(OutputError, match="is a file"):
        OutputSet(f)
    with pytest.raises(OutputError, match="is a file"):
        OutputSet(f / "sub")
    user = tmp_path / "user"
    user.mkdir()
    (user / "report.md").write_text("mine")
    with pytest.raises(OutputError, match="not empty"):
        OutputSet(user)
    with pytest.raises(OutputError, match="did not write"):
        OutputSet(user, overwrite=True)
    assert (user / "report.md").read_text() == "mine"
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "target", target_is_directory=True)
    with pytest.raises(OutputError, match="symbolic link"):
        OutputSet(link)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_parent_refused(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(OutputError, match="not writable"):
            OutputSet(ro / "out")
    finally:
        ro.chmod(0o755)


def test_overwrite_replaces_only_a_previous_set(tmp_path):
    out = _write(tmp_path / "out")
    with OutputSet(out, overwrite=True) as staging:
        (staging / "c.txt").write_text("c")
    assert sorted(p.name for p in out.iterdir()) == ["c.txt", MANIFEST]


def test_failure_leaves_the_previous_set(tmp_path):
    out = _write(tmp_path / "out")
    before = read_manifest(out)
    with pytest.raises(RuntimeError), OutputSet(out, overwrite=True) as staging:
        (staging / "half.txt").write_text("x")
        raise RuntimeError("killed halfway")
    assert read_manifest(out) == before and not (out / "half.txt").exists()
    assert [p for p in tmp_path.iterdir() if p.name.startswith(".out.")] == []


def test_stale_staging_of_a_killed_run_is_removed(tmp_path):
    stale = tmp_path / ".out.partial-deadbeef"
    stale.mkdir()
    (stale / ".dosimetry-staging").write_text("999999999")  # no such process
    (stale / "dose.nii.gz").write_text("partial")
    foreign = tmp_path / ".out.partial-notours"
    foreign.mkdir()  # no marker: not ours, left alone
    _write(tmp_path / "out")
    assert not stale.exists() and foreign.exists()


def test_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        out = _write(tmp_path / "out")
    finally:
        os.umask(old)
    mode = stat.S_IMODE((out / "a.txt").stat().st_mode)
    assert mode == 0o644, oct(mode)
    assert stat.S_IMODE(out.stat().st_mode) == 0o755


def test_document_names_stay_inside(tmp_path):
    with pytest.raises(OutputError, match="relative path"):
        write_documents(tmp_path, {"../x.txt": "x"})
    with pytest.raises(OutputError, match="relative path"):
        write_documents(tmp_path, {MANIFEST: "{}"})
    m = json.dumps({"status": "complete", "files": [{"path": "gone.txt", "size": 1, "sha256": ""}]})
    (tmp_path / MANIFEST).write_text(m)
    assert not is_complete(tmp_path)


def test_readers_check_the_output_manifest(tmp_path):
    """read_rtdose / read_nifti / TreatmentHistory.load of a file in an output set: refused
    when the file was changed after it was written, or the set is not complete; a file
    outside any set, or one the manifest does not list, reads as before."""
    import json
    import shutil

    import numpy as np

    import dosimetry as ds
    from dosimetry.errors import InputDataError
    from dosimetry.io.outputs import MANIFEST, OutputSet

    vol = ds.Volume.from_spacing(np.full((4, 5, 6), 2.0, np.float32), (3.0, 2.0, 2.0), unit="Gy")
    out = tmp_path / "set"
    outset = OutputSet(out)
    outset.check()
    staging = outset.begin()
    ds.write_nifti(vol, staging / "dose.nii.gz")
    outset.commit()
    assert float(ds.read_nifti(out / "dose.nii.gz").array.max()) == 2.0
    # changed after writing: refused, naming the manifest
    tampered = tmp_path / "tampered"
    shutil.copytree(out, tampered)
    ds.write_nifti(vol.with_array(vol.array * 2), tmp_path / "other.nii.gz")
    shutil.copy(tmp_path / "other.nii.gz", tampered / "dose.nii.gz")
    with pytest.raises(InputDataError, match="changed after the program wrote it"):
        ds.read_nifti(tampered / "dose.nii.gz")
    # a set whose manifest is not complete
    partial = tmp_path / "partial"
    shutil.copytree(out, partial)
    m = json.loads((partial / MANIFEST).read_text())
    m["status"] = "failed"
    (partial / MANIFEST).write_text(json.dumps(m))
    with pytest.raises(InputDataError, match="not complete"):
        ds.read_nifti(partial / "dose.nii.gz")
    # outside any output set: read as before
    assert float(ds.read_nifti(tmp_path / "other.nii.gz").array.max()) == 4.0
