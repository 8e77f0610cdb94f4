"""dcmtk habits on a netdicom command line: a usage error (or a dcmtk option taken for a file)
gets one hint line naming netdicom's equivalent; nothing is emulated."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from netdicom.cli import app


def _main(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["netdicom", *args])
    with pytest.raises(SystemExit) as caught:
        app.main()
    code = caught.value.code
    assert isinstance(code, int)
    return code


def _hints(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("hint:")]


def test_aec_of_storescu_is_a_usage_error_with_a_hint(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code = _main(monkeypatch, "store", "-aec", "PACS", "127.0.0.1:12499", str(tmp_path))
    err = capsys.readouterr().err
    assert code == 2
    assert "No such option: -a" in err
    assert _hints(err) == ["hint: -aec (dcmtk): use AET@HOST:PORT or --aec AET"]
    # Without a dcmtk option, the usage error alone.
    assert _main(monkeypatch, "store", "--no-such-option", "127.0.0.1:12499", "x") == 2
    assert not _hints(capsys.readouterr().err)


def test_plus_sd_taken_for_a_file_gets_one_hint_with_plus_r(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code = _main(monkeypatch, "store", "127.0.0.1:12499", "+sd", "+r", str(tmp_path))
    err = capsys.readouterr().err
    assert code == 3
    assert "no such file or directory: +sd" in err
    assert _hints(err) == [
        "hint: +sd +r (dcmtk): give folders as PATHs with -r (DICOM files are found by content)"
    ]


def test_findscu_options_get_a_hint_each(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _main(monkeypatch, "find", "-S", "-k", "PatientName=DOE", "127.0.0.1:12499")
    assert code == 2
    assert _hints(capsys.readouterr().err) == [
        "hint: -S (dcmtk): use --model study (the default)",
        "hint: -k (dcmtk): give each key as a KEY=VALUE argument, e.g. netdicom find PEER "
        "PatientName='DOE*'",
    ]
