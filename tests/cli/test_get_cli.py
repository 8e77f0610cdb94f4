"""`netdicom get` end to end: usage errors in process, retrievals as subprocesses against
`netdicom serve` and against a hostile C-GET SCP on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from netdicom.cli.app import app
from tests.dicomfiles import make_files
from tests.peers import free_port, run_cli, running, serve_argv
from tests.services.test_retrieve_get_scu import hostile_scp_thread, hostile_uids

STUDY_A = "1.2.826.0.1.42.1"
STUDY_B = "1.2.826.0.1.42.2"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    root = tmp_path_factory.mktemp("served")
    make_files(root / "a", 3, study_uid=STUDY_A, patient_id="PA", patient_name="DOE^JOHN")
    make_files(root / "b", 2, study_uid=STUDY_B, patient_id="PB", patient_name="ROE^JANE")
    port = free_port()
    with running(serve_argv(root, port, "--aet", "ARCHIVE"), port):
        yield port, root


@pytest.mark.parametrize(
    "keys",
    [["StudyInstanceUID=*"], ["StudyInstanceUID="], ["StudyInstanceUID=1.2.*"], ["PatientName=*"]],
)
def test_wildcard_unique_key_is_refused(keys: list[str], tmp_path: Path) -> None:
    # Refused before any connection: port 9 (discard) would fail otherwise with exit 4.
    result = CliRunner().invoke(app, ["get", "127.0.0.1:9", *keys, "--out", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert "refusing to retrieve" in result.output
    assert not any(tmp_path.iterdir())


def test_no_keys_is_a_usage_error() -> None:
    result = CliRunner().invoke(app, ["get", "127.0.0.1:9"])
    assert result.exit_code == 2
    assert "StudyInstanceUID" in result.output


def test_get_by_uid(server: tuple[int, Path], tmp_path: Path) -> None:
    port, _ = server
    result = run_cli("get", f"ARCHIVE@127.0.0.1:{port}", f"StudyInstanceUID={STUDY_A}",
                     "--out", str(tmp_path), "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["requests"][0]["completed"] == 3
    assert len(list(tmp_path.rglob("*.dcm"))) == 3


def test_get_resolves_other_keys_and_dry_run(server: tuple[int, Path], tmp_path: Path) -> None:
    port, _ = server
    peer = f"ARCHIVE@127.0.0.1:{port}"
    dry = run_cli("get", peer, "PatientName=DOE*", "--out", str(tmp_path), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "1 study (3 instances) match" in dry.stderr
    assert dry.stdout.strip() == f"C-GET QueryRetrieveLevel=STUDY StudyInstanceUID={STUDY_A}"
    assert not any(tmp_path.iterdir())
    real = run_cli("get", peer, "PatientName=*OE*", "--out", str(tmp_path))
    assert real.returncode == 0, real.stderr
    assert "2 studies (5 instances) match" in real.stderr
    assert len(list(tmp_path.rglob("*.dcm"))) == 5


def test_get_max_cancels(server: tuple[int, Path], tmp_path: Path) -> None:
    port, _ = server
    result = run_cli("get", f"ARCHIVE@127.0.0.1:{port}", f"StudyInstanceUID={STUDY_A}",
                     "--out", str(tmp_path), "--max", "1", "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["requests"][0]["cancelled"] is True
    assert summary["requests"][0]["status"] == 0xFE00
    assert 1 <= len(list(tmp_path.rglob("*.dcm"))) < 3


def test_hostile_scp_cannot_write_outside_out(tmp_path: Path) -> None:
    out = tmp_path / "deep" / "out"
    with hostile_scp_thread(hostile_uids(tmp_path)) as port:
        result = run_cli("get", f"127.0.0.1:{port}", "StudyInstanceUID=1.2.3", "--out", str(out))
    # Three sub-operations refused here (0xC002): exit 1, and they are listed.
    assert result.returncode == 1, result.stderr
    assert result.stderr.count("refused here: 0xC002") == 3
    outside = {p for p in tmp_path.rglob("*") if p.is_file() and out not in p.parents}
    assert outside == set()
    assert len(list(out.rglob("*.dcm"))) == 1
