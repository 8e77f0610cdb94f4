"""`netdicom store` driven through the Typer app: options, output, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from netdicom.cli.app import app
from netdicom.cli.exit_codes import ExitCode
from tests.dicomfiles import make_files
from tests.peers import free_port
from tests.services.test_store_scu import scp

runner = CliRunner()


def _lines(output: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def test_help_lists_the_options() -> None:
    result = runner.invoke(app, ["store", "--help"])
    assert result.exit_code == 0
    for option in ("--recursive", "--associations", "--json", "--aet", "--timeout"):
        assert option in result.stdout


def test_window_default_is_the_library_default() -> None:
    # The CLI states its default as a literal (importing the library would slow every start).
    import typer.main

    from netdicom.services.store_scu import DEFAULT_WINDOW

    command = typer.main.get_command(app)
    store = command.commands["store"]  # type: ignore[attr-defined]
    window = next(p for p in store.params if p.name == "window")
    assert window.default == DEFAULT_WINDOW


def test_bad_peer_is_a_usage_error(tmp_path: Path) -> None:
    paths = make_files(tmp_path, 1)
    result = runner.invoke(app, ["store", "nowhere", str(paths[0])])
    assert result.exit_code == ExitCode.USAGE


def test_missing_path_is_bad_input(tmp_path: Path) -> None:
    result = runner.invoke(app, ["store", "127.0.0.1:104", str(tmp_path / "missing.dcm")])
    assert result.exit_code == ExitCode.BAD_INPUT
    assert "missing.dcm" in result.stderr


def test_nothing_dicom_is_bad_input(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("plain text, not DICOM " * 20)
    result = runner.invoke(app, ["store", "127.0.0.1:104", "-r", str(tmp_path)])
    assert result.exit_code == ExitCode.BAD_INPUT
    assert "a.txt" in result.stderr and "no DICOM instances" in result.stderr


def test_json_lines_and_summary(tmp_path: Path) -> None:
    make_files(tmp_path, 3)
    (tmp_path / "notes.txt").write_text("not DICOM " * 20)
    with scp() as (port, received):
        result = runner.invoke(app, ["store", f"127.0.0.1:{port}", "-r", str(tmp_path), "--json"])
    assert result.exit_code == ExitCode.OK, result.stderr
    lines = _lines(result.stdout)
    files, summary = lines[:-1], lines[-1]["summary"]
    assert sorted(str(f["result"]) for f in files) == ["skipped", "stored", "stored", "stored"]
    assert {f["sop_instance_uid"] for f in files if f["result"] == "stored"} == set(received.items)
    assert isinstance(summary, dict)
    assert (summary["stored"], summary["skipped"], summary["failed"]) == (3, 1, 0)
    assert summary["bytes"] > 0


def test_summary_names_failures_and_exit_code(tmp_path: Path) -> None:
    make_files(tmp_path, 2)
    with scp(policy=lambda event, n: 0xA700 if n == 2 else 0) as (port, _):
        result = runner.invoke(app, ["store", f"127.0.0.1:{port}", "-r", str(tmp_path)])
    assert result.exit_code == ExitCode.FAILED
    assert "Stored 1 of 2 instances" in result.stdout
    assert "0xA700 Refused: out of resources" in result.stdout


def test_connection_refused_reports_each_file(tmp_path: Path) -> None:
    make_files(tmp_path, 2)
    port = free_port()
    result = runner.invoke(app, ["store", f"127.0.0.1:{port}", "-r", str(tmp_path), "--json"])
    assert result.exit_code == ExitCode.CONNECT
    lines = _lines(result.stdout)
    assert [f["result"] for f in lines[:-1]] == ["failed", "failed"]
    assert lines[-1]["summary"]["failed"] == 2  # type: ignore[index]


def test_warnings_still_exit_zero(tmp_path: Path) -> None:
    make_files(tmp_path, 2)
    with scp(policy=lambda event, n: 0xB007) as (port, _):
        result = runner.invoke(app, ["store", f"127.0.0.1:{port}", "-r", str(tmp_path), "-q"])
    assert result.exit_code == ExitCode.OK
    assert result.stdout == ""
