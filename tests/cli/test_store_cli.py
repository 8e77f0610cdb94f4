"""`netdicom store` driven through the Typer app: options, output, exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from netdicom.cli.app import app
from netdicom.cli.exit_codes import ExitCode
from tests.dicomfiles import make_files
from tests.peers import free_port
from tests.services.test_store_scu import cut_while_sent, refuse_beyond, scp

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


def test_json_when_nothing_can_be_sent_still_prints_a_summary(tmp_path: Path) -> None:
    # A CI job saving `store --json` got an empty file exactly when something went wrong.
    empty = tmp_path / "empty"
    empty.mkdir()
    text_only = tmp_path / "text"
    text_only.mkdir()
    (text_only / "notes.txt").write_text("not DICOM " * 20)
    cases = {
        "empty": ([str(empty)], 0, "no DICOM instances to send"),
        "text": ([str(text_only)], 1, "no DICOM instances to send"),
        "missing": ([str(tmp_path / "missing.dcm")], 0, "missing.dcm"),
    }
    for name, (paths, skipped, error) in cases.items():
        result = runner.invoke(app, ["store", "127.0.0.1:104", "-r", *paths, "--json"])
        assert result.exit_code == ExitCode.BAD_INPUT, name  # unchanged
        lines = _lines(result.stdout)
        files, summary = lines[:-1], lines[-1]["summary"]
        assert isinstance(summary, dict), name
        assert [f["result"] for f in files] == ["skipped"] * skipped, name
        assert (summary["files"], summary["skipped"], summary["associations"]) == (
            skipped,
            skipped,
            0,
        )
        assert error in str(summary["error"]), name
    files = _lines(
        runner.invoke(app, ["store", "127.0.0.1:104", str(text_only), "-r", "--json"]).stdout
    )
    assert "not a DICOM" in str(files[0]["reason"])


def test_an_extra_association_refused_is_a_note_not_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_files(tmp_path, 6)
    calls = refuse_beyond(monkeypatch, 2)  # serve --max-associations 2
    with scp() as (port, _):
        result = runner.invoke(
            app, ["store", f"127.0.0.1:{port}", "-r", str(tmp_path), "-j", "4", "--json"]
        )
        calls[0] = 0
        quiet = runner.invoke(
            app, ["store", f"127.0.0.1:{port}", "-r", str(tmp_path), "-j", "4", "-q"]
        )
    assert result.exit_code == ExitCode.OK, result.stderr
    summary = _lines(result.stdout)[-1]["summary"]
    assert summary["error"] is None and summary["stored"] == 6  # type: ignore[index]
    (line,) = result.stderr.splitlines()
    assert line.startswith("netdicom: note: the peer refused 2 of 4 associations")
    assert "local limit exceeded" in line and "the other 2" in line
    assert quiet.exit_code == ExitCode.OK and quiet.stderr == ""


def test_a_file_cut_short_mid_send_exits_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # It used to end the run with LocalProtocolError: exit 2 (a usage error), the rest not sent.
    paths = make_files(tmp_path, 3, rows=64, columns=64)
    cut_while_sent(monkeypatch, paths[0])
    with scp() as (port, received):
        result = runner.invoke(app, ["store", f"127.0.0.1:{port}", "-r", str(tmp_path), "--json"])
    assert result.exit_code == ExitCode.FAILED, result.stderr
    lines = _lines(result.stdout)
    assert [f["result"] for f in lines[:-1]] == ["failed", "stored", "stored"]
    assert "changed while it was being sent" in str(lines[0]["reason"])
    assert lines[-1]["summary"]["error"] is None  # type: ignore[index]
    assert len(received.items) == 2


def _answers_for_another_instance(conn: Any) -> None:
    from netdicom.core.dimse import CStoreRSP
    from tests.cli.test_get_cli import ScriptedQR

    qr = ScriptedQR(conn)
    context_id, request = qr.request()
    qr.send(context_id, CStoreRSP(request.message_id, 0, request.affected_sop_class_uid,
                                  "9.9.9.9"))  # fmt: skip
    qr.release()


def test_a_response_naming_another_instance_is_a_warning(tmp_path: Path) -> None:
    # PS3.7 9.3.1.2: the response's Affected SOP Instance UID is the request's. One naming
    # 9.9.9.9 was taken as "stored" on the Message ID alone.
    from tests.cli.test_exit_codes import scripted_peer
    from tests.peers import run_cli

    make_files(tmp_path, 1)
    with scripted_peer(_answers_for_another_instance) as port:
        result = run_cli("store", f"127.0.0.1:{port}", "-r", str(tmp_path), "--json",
                         "--timeout", "5")  # fmt: skip
    assert result.returncode == 0, result.stderr  # warnings are allowed
    outcome = json.loads(result.stdout.splitlines()[0])
    assert outcome["result"] == "warning"
    assert outcome["reason"] == "the peer's response names another instance (9.9.9.9)"


def test_an_odd_length_deflated_file_goes_as_it_is_with_its_pad(tmp_path: Path) -> None:
    # PS3.5 A.5: an odd deflated bit stream is followed by one 00H byte. Such a file (dcmconv
    # +td writes them) was inflated and sent converted, though the peer accepted deflate.
    import zlib

    from pydicom.uid import DeflatedExplicitVRLittleEndian

    from netdicom.core.datasets import probe_file
    from tests.dicomfiles import make_dataset, write_instance
    from tests.peers import run_cli, running, serve_argv

    deflated = str(DeflatedExplicitVRLittleEndian)
    for size in range(1, 64):
        ds = make_dataset()
        ds.PatientComments = "x" * size
        path = write_instance(tmp_path / "odd.dcm", ds, deflated)
        whole = path.read_bytes()
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        inflater.decompress(whole[probe_file(path).dataset_offset :])
        if inflater.unused_data == b"\x00":  # pydicom padded an odd stream: undo it
            path.write_bytes(whole[:-1])
            break
    else:
        pytest.fail("no odd-length deflated data set made")
    info = probe_file(path)
    assert info.dataset_length % 2 == 1
    port = free_port()
    archive = tmp_path / "archive"
    with running(serve_argv(archive, port), port):
        result = run_cli("store", f"127.0.0.1:{port}", str(path), "--json")
    outcome = json.loads(result.stdout.splitlines()[0])
    assert outcome["result"] == "stored", result.stdout
    assert outcome["transfer_syntax"] == deflated and outcome["converted"] is False
    (stored,) = [p for p in archive.rglob("*.dcm") if ".incoming" not in p.parts]
    body = stored.read_bytes()[probe_file(stored).dataset_offset :]
    assert body == path.read_bytes()[info.dataset_offset :] + b"\x00"
