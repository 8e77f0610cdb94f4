"""Walk-through findings: `get` of compressed instances from `netdicom serve` (and the reason
when one cannot be sent), `echo --json` keys when no C-ECHO was sent, `serve -q`'s help."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from netdicom.cli.app import app
from netdicom.core.datasets import probe_file
from netdicom.services.retrieve_scp import NO_ACCEPTED_CONTEXT
from tests.dicomfiles import make_files
from tests.peers import free_port, run_cli, running, serve_argv
from tests.services.test_retrieve_scp import JPEG_BASELINE, JPEG_LOSSLESS_SV1, write_compressed

STUDY = "1.2.826.0.1.77.1"
# Every key the README's Machine output lists for `echo --json`.
ECHO_KEYS = {"peer", "called_ae", "calling_ae", "echoes", "succeeded", "status", "status_name",
             "error_comment", "round_trip_ms", "error"}  # fmt: skip


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, list[Path]]]:
    """serve holding one study: uncompressed, JPEG Baseline and JPEG Lossless SV1 CTs."""
    root = tmp_path_factory.mktemp("served")
    files = [
        *make_files(root, 1, study_uid=STUDY),
        write_compressed(root / "baseline.dcm", JPEG_BASELINE, study_uid=STUDY),
        write_compressed(root / "lossless.dcm", JPEG_LOSSLESS_SV1, study_uid=STUDY),
    ]
    port = free_port()
    with running(serve_argv(root, port), port):
        yield port, files


def _by_uid(paths: list[Path]) -> dict[str, str]:
    return {probe_file(p).sop_instance_uid: probe_file(p).transfer_syntax for p in paths}


def test_get_receives_every_compressed_instance(
    served: tuple[int, list[Path]], tmp_path: Path
) -> None:
    # Was: one compressed context offering every syntax; serve took one, and the JPEG
    # Baseline instance failed with A702 and a bare "failed: <uid>".
    port, files = served
    result = run_cli(
        "get", f"127.0.0.1:{port}", f"StudyInstanceUID={STUDY}", "--out", str(tmp_path)
    )
    assert result.returncode == 0, result.stderr
    assert _by_uid(list(tmp_path.rglob("*.dcm"))) == _by_uid(files)


def test_get_says_why_an_instance_was_not_sent(
    served: tuple[int, list[Path]], tmp_path: Path
) -> None:
    port, files = served
    baseline = probe_file(files[1]).sop_instance_uid
    result = run_cli("get", f"127.0.0.1:{port}", f"StudyInstanceUID={STUDY}", "--out",
                     str(tmp_path), "--ts", "JPEGLosslessSV1")  # fmt: skip
    assert result.returncode == 1
    reason = f"1 not sent: transfer syntax {JPEG_BASELINE} not accepted"
    assert f"failed: {baseline} (the peer: {reason})" in result.stderr, result.stderr
    assert len(list(tmp_path.rglob("*.dcm"))) == 2


def test_get_json_carries_the_reason(served: tuple[int, list[Path]], tmp_path: Path) -> None:
    port, files = served
    result = run_cli("get", f"127.0.0.1:{port}", "SOPInstanceUID=" + probe_file(files[1]).sop_instance_uid,
                     "StudyInstanceUID=" + STUDY, "SeriesInstanceUID=" + _series(files[1]),
                     "--level", "image", "--ts", "RLELossless", "--out", str(tmp_path), "--json")  # fmt: skip
    assert result.returncode == 1, result.stderr
    request = json.loads(result.stdout)["requests"][0]
    # PS3.4 C.4.3.3.1: every sub-operation failed for want of a context: a Failure that says
    # so, not "Refused: out of resources" (A702).
    assert request["status"] == NO_ACCEPTED_CONTEXT
    assert request["error_comment"] == f"1 not sent: transfer syntax {JPEG_BASELINE} not accepted"


def test_get_refuses_an_unknown_transfer_syntax(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "get",
            "127.0.0.1:9",
            "StudyInstanceUID=1.2.3",
            "--ts",
            "JPEG9000",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 2
    assert "--ts" in result.output and "JPEG9000" in result.output


def _series(path: Path) -> str:
    from pydicom import dcmread

    return str(dcmread(path, stop_before_pixels=True).SeriesInstanceUID)


def test_echo_json_has_every_documented_key_whatever_happened(tmp_path: Path) -> None:
    # Was: no "status_name" nor "round_trip_ms" when no C-ECHO could be sent.
    refused = run_cli("echo", f"127.0.0.1:{free_port()}", "--json")
    assert refused.returncode == 4, refused.stderr
    answer = json.loads(refused.stdout)
    assert set(answer) == ECHO_KEYS
    assert answer["status_name"] is None and answer["round_trip_ms"] is None
    port = free_port()
    with running(serve_argv(tmp_path, port), port):
        echoed = run_cli("echo", f"127.0.0.1:{port}", "--json")
    assert echoed.returncode == 0, echoed.stderr
    assert set(json.loads(echoed.stdout)) == ECHO_KEYS


def test_serve_quiet_help_says_it_keeps_warnings() -> None:
    # The README: serve -q logs warnings only; it was documented as "Print nothing".
    serve_help = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "200"}).output
    assert "Log warnings and errors only." in serve_help
    assert "Print nothing" not in serve_help
    echo_help = CliRunner().invoke(app, ["echo", "--help"], env={"COLUMNS": "200"}).output
    assert "Print nothing but what --json (or find" in echo_help
