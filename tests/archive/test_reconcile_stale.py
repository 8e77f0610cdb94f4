"""Start-up reconciliation of the index with the files: a file that no longer reads as a DICOM
instance loses its row (with a warning naming it), and the file itself is left alone."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from netdicom.archive.rebuild import open_index
from tests.dicomfiles import make_dataset, write_instance


def _indexed(root: Path) -> dict[str, str]:
    """SOP Instance UID -> file, as the index has it after a start-up."""
    index, _ = open_index(root)
    try:
        return index.sop_instance_paths([f"1.2.3.{n}" for n in range(3)])
    finally:
        index.close()


def _archive(root: Path) -> list[Path]:
    return [
        write_instance(
            root / f"{n}.dcm", make_dataset(sop_instance_uid=f"1.2.3.{n}", study_uid="9")
        )
        for n in range(3)
    ]


def test_a_file_overwritten_with_garbage_loses_its_row(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    files = _archive(tmp_path)
    assert _indexed(tmp_path) == {"1.2.3.0": "0.dcm", "1.2.3.1": "1.dcm", "1.2.3.2": "2.dcm"}
    files[1].write_text("garbage\n")  # while serve is down
    with caplog.at_level(logging.WARNING, logger="netdicom.index"):
        index, report = open_index(tmp_path)
    index.close()
    assert (report.removed, report.total) == (1, 2)
    assert (
        "index: dropped 1.dcm, which no longer reads as a DICOM instance (no DICM prefix); "
        "the file is left in place"
    ) in caplog.text
    assert _indexed(tmp_path) == {"1.2.3.0": "0.dcm", "1.2.3.2": "2.dcm"}
    assert files[1].read_text() == "garbage\n"  # never a user's file removed


def test_a_file_now_holding_another_indexed_instance_loses_its_old_row(tmp_path: Path) -> None:
    files = _archive(tmp_path)
    _indexed(tmp_path)
    # 2.dcm is overwritten with a copy of 0.dcm (a larger one, so its size changes).
    ds = make_dataset(sop_instance_uid="1.2.3.0", study_uid="9", rows=16, columns=16)
    write_instance(files[2], ds)
    assert _indexed(tmp_path) == {"1.2.3.0": "0.dcm", "1.2.3.1": "1.dcm"}
    assert files[2].exists()
