"""pynetdicom 3 installs console scripts named like dcmtk's tools beside the interpreter. With
the venv activated they come first on PATH; the tests and the benchmarks mean dcmtk by those
names, and take that folder off PATH so that dcmtk's tools are found."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests import peers

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = Path(sys.executable).parent


def _benchlib_fix() -> Callable[[], None]:
    sys.path.insert(0, str(BENCH))
    try:
        import benchlib
    finally:
        sys.path.remove(str(BENCH))
    fix: Callable[[], None] = benchlib._dcmtk_first
    return fix


@pytest.mark.skipif(
    not (SCRIPTS / "storescp").exists() or not peers.have_dcmtk(),
    reason="needs pynetdicom's storescp script beside the interpreter and dcmtk",
)
@pytest.mark.parametrize("which", ["tests", "benchmarks"])
def test_dcmtk_is_found_before_pynetdicom_scripts(
    which: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fix = peers._dcmtk_before_pynetdicom if which == "tests" else _benchlib_fix()
    dcmtk = Path(str(shutil.which("storescp"))).parent  # where dcmtk is, seen without the venv
    monkeypatch.setenv("PATH", ":".join([str(SCRIPTS), str(dcmtk), "/usr/bin", "/bin"]))
    assert shutil.which("storescp") == str(SCRIPTS / "storescp")  # as an activated venv has it
    fix()
    found = shutil.which("storescp")
    assert found is not None and Path(found).parent != SCRIPTS
    assert Path(found).read_bytes()[:4] == b"\x7fELF"  # dcmtk's binary, not a Python script
