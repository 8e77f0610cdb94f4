"""`netdicom move` end to end: usage errors in process; A801 and a move to a receiver that
refuses everything as subprocesses against `netdicom serve`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from netdicom.cli.app import app
from tests.dicomfiles import make_files
from tests.peers import free_port, run_cli, running, serve_argv

STUDY = "1.2.826.0.1.43.1"


def test_dest_or_listen_is_required() -> None:
    result = CliRunner().invoke(app, ["move", "127.0.0.1:9", f"StudyInstanceUID={STUDY}"])
    assert result.exit_code == 2
    assert "--dest" in result.output and "--listen" in result.output


def test_wildcard_unique_key_is_refused() -> None:
    result = CliRunner().invoke(app, ["move", "127.0.0.1:9", "StudyInstanceUID=*", "--dest", "X"])
    assert result.exit_code == 2
    assert "refusing to retrieve" in result.output


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    root = tmp_path_factory.mktemp("served")
    make_files(root, 2, study_uid=STUDY)
    port = free_port()
    dead = free_port()
    argv = serve_argv(root, port, "--aet", "ARCHIVE", "--remote", f"DEAD=127.0.0.1:{dead}")
    with running(argv, port):
        yield port


def test_unknown_destination_is_a801_with_a_hint(server: int) -> None:
    result = run_cli("move", f"127.0.0.1:{server}", f"StudyInstanceUID={STUDY}", "--dest", "WHO")
    assert result.returncode == 1
    assert "0xA801" in result.stderr
    assert "hint:" in result.stderr and "WHO" in result.stderr


def test_unreachable_destination_fails_every_instance(server: int) -> None:
    result = run_cli("move", f"127.0.0.1:{server}", f"StudyInstanceUID={STUDY}",
                     "--dest", "DEAD", "--json")  # fmt: skip
    assert result.returncode == 1
    summary = json.loads(result.stdout)["requests"][0]
    assert summary["status"] == 0xA702
    assert summary["failed"] == 2 and len(summary["failed_sop_instance_uids"]) == 2


def test_move_dry_run_needs_no_destination(server: int, tmp_path: Path) -> None:
    result = run_cli("move", f"127.0.0.1:{server}", "PatientID=PAT001", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"C-MOVE QueryRetrieveLevel=STUDY StudyInstanceUID={STUDY}"
