"""`netdicom find` against a scripted Query SCP that sends what no real one should: the real
command as a subprocess, the peer on a thread (tests.hardening.raw) on 127.0.0.1."""

from __future__ import annotations

import subprocess

import pytest

from netdicom.core.dimse import CFindRQ, CFindRSP, decode_command, encode_command
from netdicom.core.pdu import PDataTF, ReleaseRP, ReleaseRQ
from tests.hardening.raw import RawPeer, ScriptedServer, accept_echo, pdata
from tests.peers import NETDICOM

# Not a data set in any VR encoding: tag (8DC2,39AA) followed by a VR that does not exist.
GARBAGE = bytes.fromhex("c28daa39ac9e0400deadbeef")
# (0010,0010) PN of length 100 in implicit VR, with 4 bytes of value: truncated.
TRUNCATED = bytes.fromhex("1000100064000000") + b"DOE^"


def _read_find_rq(peer: RawPeer) -> tuple[int, CFindRQ]:
    """The C-FIND-RQ and its identifier (in one or two PDUs); its context and message."""
    request: CFindRQ | None = None
    context_id = 0
    while True:
        pdu = peer.read_pdu()
        assert isinstance(pdu, PDataTF), pdu
        for pdv in pdu.pdvs:
            if pdv.is_command:
                command = decode_command(bytes(pdv.data))
                assert isinstance(command, CFindRQ), command
                request, context_id = command, pdv.context_id
            elif pdv.is_last and request is not None:
                return context_id, request


def _answers_with(
    identifier: bytes, *, pending_status: int = 0xFF00, final_status: int = 0x0000
) -> ScriptedServer:
    """One pending response carrying `identifier`, then the final response."""

    def script(peer: RawPeer) -> None:
        accept_echo(peer)
        context_id, request = _read_find_rq(peer)
        pending = CFindRSP(request.message_id, pending_status, request.affected_sop_class_uid,
                           has_dataset=True)  # fmt: skip
        peer.send(pdata(context_id, encode_command(pending)))
        peer.send(pdata(context_id, identifier, command=False))
        final = CFindRSP(request.message_id, final_status, request.affected_sop_class_uid)
        peer.send(pdata(context_id, encode_command(final)))
        if isinstance(peer.read_pdu(), ReleaseRQ):  # else the client aborted
            peer.send_pdu(ReleaseRP())

    return ScriptedServer(script)


@pytest.mark.parametrize("identifier", [GARBAGE, TRUNCATED], ids=["garbage", "truncated"])
def test_a_match_that_is_not_a_data_set_is_a_protocol_error(identifier: bytes) -> None:
    # Was: exit 0, "1 match" with an empty or made-up row, and pydicom's warnings on stderr.
    with _answers_with(identifier) as server:
        result = subprocess.run(
            [*NETDICOM, "find", f"127.0.0.1:{server.port}", "PatientName=*", "--timeout", "5"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert result.returncode == 6, result.stdout + result.stderr
    assert "not a valid data set" in result.stderr
    assert "match" not in result.stdout
    assert "Warning" not in result.stderr and "Traceback" not in result.stderr
    assert not server.errors, server.errors


def test_pydicom_warnings_do_not_reach_stderr() -> None:
    # A UID that is not a UID: pydicom warns when the value is read (a UserWarning naming
    # its own source file); the match is shown as sent, the warning is not.
    from pydicom.dataelem import DataElement
    from pydicom.dataset import Dataset

    from netdicom.core import uids
    from netdicom.services.find_scp import encode_identifier

    ds = Dataset()
    ds.add(DataElement(0x0020000D, "UI", "1.2.X", validation_mode=0))  # StudyInstanceUID
    ds.StudyDate = "20240102"
    with _answers_with(encode_identifier(ds, uids.IMPLICIT_VR_LE)) as server:
        result = subprocess.run(
            [*NETDICOM, "find", f"127.0.0.1:{server.port}", "--csv", "--no-defaults",
             "StudyDate=", "StudyInstanceUID="],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["StudyDate,StudyInstanceUID", "20240102,1.2.X"]
    assert "Warning" not in result.stderr and "pydicom" not in result.stderr, result.stderr


def _match() -> bytes:
    from pydicom.dataset import Dataset

    from netdicom.core import uids
    from netdicom.services.find_scp import encode_identifier

    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.PatientID = "PAT1"
    return encode_identifier(ds, uids.IMPLICIT_VR_LE)


def _pending_forever(*, identifier: bool, code: int = 0xFF00) -> ScriptedServer:
    """Pending responses every 0.2 s for 20 s, whatever the client sends (a C-CANCEL)."""

    def script(peer: RawPeer) -> None:
        import time

        accept_echo(peer)
        context_id, request = _read_find_rq(peer)
        for _ in range(100):
            pending = CFindRSP(request.message_id, code, request.affected_sop_class_uid,
                               has_dataset=identifier)  # fmt: skip
            peer.send(pdata(context_id, encode_command(pending)))
            if identifier:
                peer.send(pdata(context_id, _match(), command=False))
            time.sleep(0.2)

    return ScriptedServer(script)


def _find(port: int, *extra: str) -> tuple[subprocess.CompletedProcess[str], float]:
    import time

    started = time.monotonic()
    result = subprocess.run(
        [*NETDICOM, "find", f"127.0.0.1:{port}", "PatientID=PAT1", "--timeout", "3", *extra],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return result, time.monotonic() - started


def test_a_pending_response_without_a_match_is_a_protocol_error() -> None:
    # Each one restarted the timeout: the command ran as long as the peer liked, silent.
    with _pending_forever(identifier=False) as server:
        result, elapsed = _find(server.port)
    assert result.returncode == 6, result.stderr
    assert "pending C-FIND-RSP without an identifier" in result.stderr
    assert elapsed < 10


def test_max_results_gives_a_peer_that_ignores_the_cancel_a_few_seconds() -> None:
    with _pending_forever(identifier=True) as server:
        result, elapsed = _find(server.port, "--max-results", "1", "--csv", "--no-defaults",
                                "PatientID=")  # fmt: skip
    assert result.returncode == 7, result.stderr  # the peer never ended the query
    assert "the peer ignored our C-CANCEL-RQ: no final C-FIND-RSP within 5 s" in result.stderr
    assert "--timeout" not in result.stderr  # --timeout would not change it
    assert result.stdout.splitlines() == ["PatientID", "PAT1"]
    assert elapsed < 15


def test_ff01_matches_come_with_a_warning() -> None:
    with _answers_with(_match(), pending_status=0xFF01) as server:
        result, _ = _find(server.port, "Modality=CT")
    assert result.returncode == 0, result.stderr
    assert "did not support one or more keys (status FF01)" in result.stderr


def test_a_final_warning_status_is_not_a_failure() -> None:
    with _answers_with(_match(), final_status=0x0001) as server:
        result, _ = _find(server.port)
    assert result.returncode == 0, result.stderr  # was 1, "C-FIND failed: Warning …"
    assert "netdicom: warning: C-FIND ended with" in result.stderr
    assert "1 match" in result.stderr and "failed" not in result.stderr
