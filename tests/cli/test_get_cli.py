"""`netdicom get` end to end: usage errors in process, retrievals as subprocesses against
`netdicom serve`, against a hostile C-GET SCP, and against scripted Q/R SCPs whose counts lie
or that drop the connection mid-transfer, on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from netdicom.cli.app import app
from netdicom.core import uids
from netdicom.core.acse import AcceptorPolicy, negotiate_acceptor
from netdicom.core.dimse import decode_command, encode_command, status
from netdicom.core.dimse.messages_qr import CGetRSP, CMoveRSP
from netdicom.core.dimse.messages_store import CStoreRQ, CStoreRSP
from netdicom.core.pdu import (
    PDU,
    AssociateRJ,
    AssociateRQ,
    PDataTF,
    PresentationDataValue,
    ReleaseRP,
    ReleaseRQ,
    decode_pdu,
    encode_pdata,
    encode_pdu,
)
from netdicom.services.find_scp import encode_identifier
from tests.cli.test_exit_codes import scripted_peer
from tests.dicomfiles import CT, make_dataset, make_files
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
    # A UID key with a wildcard is refused as such when the keys are read (as find does).
    assert "refusing to retrieve" in result.output or "never a wildcard" in result.output
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    "key", ["PatientName=*", "Modality=*", "StudyInstanceUID=", "PatientName=**"]
)  # `**` passed for a narrowing key, and retrieved everything (walkthrough 6d)
def test_only_universal_keys_are_refused_as_such(key: str) -> None:
    # PatientName is no unique key, yet the refusal called it one; and the UID-wildcard
    # refusal advised KEY=, which this refusal then met.
    result = CliRunner().invoke(app, ["get", "127.0.0.1:9", key, "--level", "series"])
    assert result.exit_code == 2
    assert "every key is empty or *" in result.output
    assert "unique key" not in result.output
    wildcard = CliRunner().invoke(app, ["get", "127.0.0.1:9", "StudyInstanceUID=1.2.*"])
    assert "give whole UIDs" in wildcard.output and "leave it empty" not in wildcard.output


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
    assert summary["stored"] == 3 and summary["problems"] == [] and summary["error"] is None
    assert len(list(tmp_path.rglob("*.dcm"))) == 3
    assert not (tmp_path / ".incoming").exists()  # the temporary folder, once empty


def test_get_resolves_other_keys_and_dry_run(server: tuple[int, Path], tmp_path: Path) -> None:
    port, _ = server
    peer = f"ARCHIVE@127.0.0.1:{port}"
    dry = run_cli("get", peer, "PatientName=DOE*", "--out", str(tmp_path), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "1 study (3 instances) matches" in dry.stderr
    assert dry.stdout.strip() == f"C-GET QueryRetrieveLevel=STUDY StudyInstanceUID={STUDY_A}"
    assert not any(tmp_path.iterdir())
    real = run_cli("get", peer, "PatientName=*OE*", "--out", str(tmp_path))
    assert real.returncode == 0, real.stderr
    assert "2 studies (5 instances) match" in real.stderr
    assert len(list(tmp_path.rglob("*.dcm"))) == 5


def test_get_json_without_a_match_and_dry_run_json(
    server: tuple[int, Path], tmp_path: Path
) -> None:
    # Both printed nothing on stdout (a `| jq` in a script got no input) or human text.
    peer = f"ARCHIVE@127.0.0.1:{server[0]}"
    none = run_cli("get", peer, "PatientID=NOSUCH", "--out", str(tmp_path), "--json")
    assert none.returncode == 0, none.stderr
    summary = json.loads(none.stdout)
    assert summary["service"] == "get" and summary["requests"] == [] and summary["stored"] == 0
    dry = run_cli("get", peer, "PatientName=DOE*", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    plan = {"QueryRetrieveLevel": "STUDY", "StudyInstanceUID": STUDY_A}
    assert json.loads(dry.stdout) == {
        "service": "get",
        "dry_run": True,
        "plan": [plan],
        "skipped": [],
    }
    assert not any(tmp_path.iterdir())


def test_get_json_when_the_resolving_find_fails(tmp_path: Path) -> None:
    # Nothing listens: the C-FIND that resolves PatientName cannot run. stdout was empty.
    result = run_cli("get", f"127.0.0.1:{free_port()}", "PatientName=DOE*", "--json",
                     "--out", str(tmp_path))  # fmt: skip
    assert result.returncode == 4, result.stderr
    summary = json.loads(result.stdout)
    assert summary["requests"] == [] and "refused" in summary["error"]


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
    assert result.stderr.count("refused here: Error: cannot understand (0xC002)") == 3
    # Our own refusals: no lead to the 128 contexts (the hint blamed them).
    assert "did not fit in the 128" not in result.stderr
    outside = {p for p in tmp_path.rglob("*") if p.is_file() and out not in p.parents}
    assert outside == set()
    assert len(list(out.rglob("*.dcm"))) == 1


def test_peer_without_role_is_warned_about_once(tmp_path: Path) -> None:
    out = tmp_path / "out"
    sends = [("1.2.826.0.1.5", "P1"), ("1.2.826.0.1.6", "P2")]
    with hostile_scp_thread(sends, grant_role=False) as port:
        result = run_cli("get", f"127.0.0.1:{port}", "StudyInstanceUID=1.2.3", "--out", str(out))
    assert result.returncode == 1, result.stderr  # the hostile peer ends with 0xB000
    # Two instances of one SOP class: one line, not one per instance or one per layer.
    assert result.stderr.count("SCP role") == 1, result.stderr
    assert f"the peer sent {CT} without granting the SCP role; accepted" in result.stderr
    assert len(list(out.rglob("*.dcm"))) == 2


# --- scripted Q/R SCPs: what a misbehaving peer sends, built with our own codec ---------------


class ScriptedQR:
    """A Q/R SCP on one raw socket: accepts the association (storage contexts with the SCP
    role for the requestor, PS3.4 C.4.3.1), then does what the test script says. Every PDU and
    command set is built by netdicom.core.pdu and netdicom.core.dimse."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        rq = self.read()
        assert isinstance(rq, AssociateRQ)
        policy = AcceptorPolicy(
            ae_title="LIAR",
            transfer_syntax_chooser=lambda abstract, offered: (
                uids.IMPLICIT_VR_LE if uids.IMPLICIT_VR_LE in offered else offered[0]
            ),
            can_act_as_scu=lambda sop_class: True,
        )
        answer = negotiate_acceptor(rq, policy)
        assert not isinstance(answer, AssociateRJ)
        ac, self.negotiated = answer
        conn.sendall(encode_pdu(ac))
        self._message_ids = iter(range(100, 200))

    def _exactly(self, count: int) -> bytes:
        parts: list[bytes] = []
        while count:
            chunk = self.conn.recv(count)
            if not chunk:
                raise ConnectionError("the requestor closed the connection")
            parts.append(chunk)
            count -= len(chunk)
        return b"".join(parts)

    def read(self) -> PDU:
        header = self._exactly(6)
        return decode_pdu(header[0], self._exactly(int.from_bytes(header[2:], "big")))

    def request(self) -> tuple[int, Any]:
        """The next message (context ID, message); its data set, if any, is read and dropped."""
        command = bytearray()
        message: Any = None
        context_id = 0
        while True:
            pdu = self.read()
            assert isinstance(pdu, PDataTF), pdu
            for pdv in pdu.pdvs:
                context_id = pdv.context_id
                if pdv.is_command:
                    command += pdv.data
                    if pdv.is_last:
                        message = decode_command(bytes(command))
                        if not message.has_dataset:
                            return context_id, message
                elif pdv.is_last:
                    return context_id, message

    def send(
        self, context_id: int, message: Any, data: bytes | None = None, *, cut: int = 0
    ) -> None:
        """Send `message`; `cut`: send only that many bytes of `data` (not the last fragment)."""
        command = PresentationDataValue(context_id, True, True, encode_command(message))
        self.conn.sendall(encode_pdata(PDataTF((command,))))
        if data is not None:
            piece = PresentationDataValue(context_id, False, not cut, data[:cut] if cut else data)
            self.conn.sendall(encode_pdata(PDataTF((piece,))))

    def store(self, sop_instance_uid: str, *, cut: int = 0) -> None:
        """One C-STORE sub-operation of a C-GET (PS3.4 C.4.3.3), answered unless `cut`."""
        context = next(c for c in self.negotiated.accepted.values() if c.abstract_syntax == CT)
        ds = make_dataset(sop_instance_uid=sop_instance_uid, patient_id="P1", study_uid="1.2.3")
        data = encode_identifier(ds, context.transfer_syntax)
        message = CStoreRQ(next(self._message_ids), CT, sop_instance_uid)
        self.send(context.context_id, message, data, cut=cut)
        if not cut:
            _, answer = self.request()
            assert isinstance(answer, CStoreRSP), answer

    def release(self) -> None:
        if isinstance(self.read(), ReleaseRQ):
            self.conn.sendall(encode_pdu(ReleaseRP()))


def retrieve_rsp(
    kind: type[CGetRSP] | type[CMoveRSP], request: Any, code: int, *counts: int | None
) -> CGetRSP | CMoveRSP:
    """A C-GET-RSP or C-MOVE-RSP to `request` with (remaining, completed, failed, warning)."""
    remaining, completed, failed, warning = counts
    return kind(
        request.message_id,
        code,
        request.affected_sop_class_uid,
        remaining,
        completed,
        failed,
        warning,
    )


def _get_rsp(request: Any, code: int, *counts: int | None) -> CGetRSP | CMoveRSP:
    return retrieve_rsp(CGetRSP, request, code, *counts)


def _get_lying(conn: socket.socket) -> None:
    # PS3.4 C.4.3.3: 100 completed sub-operations, but not one C-STORE-RQ was sent.
    qr = ScriptedQR(conn)
    context_id, request = qr.request()
    qr.send(context_id, _get_rsp(request, status.PENDING, 3, 0, 0, 0))
    qr.send(context_id, _get_rsp(request, status.SUCCESS, None, 100, 0, 0))
    qr.release()


def _get_success_with_failures(conn: socket.socket) -> None:
    # Success (0x0000) although 5 sub-operations failed: PS3.4 C.4.3.2.1 wants B000 or a failure.
    qr = ScriptedQR(conn)
    context_id, request = qr.request()
    qr.store("1.2.826.0.1.99.1")
    qr.send(context_id, _get_rsp(request, status.SUCCESS, None, 1, 5, 0))
    qr.release()


def _get_then_close(conn: socket.socket) -> None:
    # One instance stored, the next one cut in the middle of its data set, connection closed.
    qr = ScriptedQR(conn)
    qr.request()
    qr.store("1.2.826.0.1.99.2")
    qr.store("1.2.826.0.1.99.3", cut=100)


def _reject(conn: socket.socket) -> None:
    conn.recv(65536)  # the A-ASSOCIATE-RQ
    # Rejected permanent, by the service user, no reason given (PS3.8 Table 9-21).
    conn.sendall(encode_pdu(AssociateRJ(1, 1, 1)))


def _incoming_left(out: Path) -> bool:
    return (out / ".incoming").exists()


def _get_from(peer: Any, out: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """netdicom get StudyInstanceUID=1.2.3 into `out` from a scripted peer doing `peer`."""
    with scripted_peer(peer) as port:
        return run_cli("get", f"127.0.0.1:{port}", "StudyInstanceUID=1.2.3",
                       "--out", str(out), "--timeout", "5", *options)  # fmt: skip


def test_get_counts_that_lie_exit_1(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = _get_from(_get_lying, out)
    assert result.returncode == 1, result.stderr
    assert "the peer reports 100 completed sub-operations, but 0 instances were stored here" in (
        result.stderr
    )
    assert not out.exists()  # no empty .incoming, and no empty folder made by this run


def test_get_success_with_failed_sub_operations_exit_1(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = _get_from(_get_success_with_failures, out, "--json")
    assert result.returncode == 1, result.stderr
    summary = json.loads(result.stdout)
    assert summary["stored"] == 1 and summary["error"] is None
    (problem,) = summary["problems"]
    assert "Success (0x0000) but counts 5 failed sub-operations" in problem
    assert len(list(out.rglob("*.dcm"))) == 1
    assert not _incoming_left(out)
    # With --json too, a failure is one line on stderr, for the job's log (walkthrough 6d).
    assert "netdicom: error: 5 sub-operation(s) failed (listed in the JSON)" in result.stderr


def test_get_json_after_a_mid_transfer_failure_says_what_was_stored(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = _get_from(_get_then_close, out, "--json")
    assert result.returncode == 6, result.stderr  # aborted: the same code as without --json
    summary = json.loads(result.stdout)
    assert summary["stored"] == 1
    # The instance cut off is listed, not stored: its command had named it (walk 4).
    stored, cut = summary["received"]
    assert stored["sop_instance_uid"] == "1.2.826.0.1.99.2" and stored["status"] == 0
    assert cut["sop_instance_uid"] == "1.2.826.0.1.99.3" and cut["status"] is None
    assert cut["error_comment"].startswith("not stored: cut off during its data set")
    assert "closed the connection" in summary["error"]
    assert [p.name for p in out.rglob("*.dcm")] == ["1.2.826.0.1.99.2.dcm"]
    text = _get_from(_get_then_close, tmp_path / "text")
    assert text.returncode == 6
    assert f"1 stored in {tmp_path / 'text'}" in text.stderr
    assert "1.2.826.0.1.99.3 (not stored: cut off during its data set" in text.stderr


def _get_same_instance_thrice(conn: socket.socket) -> None:
    qr = ScriptedQR(conn)
    context_id, request = qr.request()
    for _ in range(3):
        qr.store("1.2.826.0.1.99.7")
    qr.send(context_id, _get_rsp(request, status.SUCCESS, None, 3, 0, 0))
    qr.release()


def test_an_instance_sent_three_times_is_counted_once_with_a_note(tmp_path: Path) -> None:
    # Walk-through 4: "3 stored", exit 0, though one file was on disk.
    out = tmp_path / "out"
    result = _get_from(_get_same_instance_thrice, out, "--json")
    summary = json.loads(result.stdout)
    assert summary["stored"] == 1
    # Each copy names another series: each has a path of its own (not deduplicated here).
    assert {p.name for p in out.rglob("*.dcm")} == {"1.2.826.0.1.99.7.dcm"}
    assert any("sent 1.2.826.0.1.99.7 3 times: counted once" in p for p in summary["problems"])
    # Three sub-operations completed, as the peer says: the counts agree, the note informs.
    assert result.returncode == 0, result.stderr


def _get_refused_without_counts(conn: socket.socket) -> None:
    qr = ScriptedQR(conn)
    context_id, request = qr.request()
    qr.send(context_id, _get_rsp(request, 0xC123, None, None, None, None))
    qr.release()


def test_a_failure_status_says_error_and_absent_counts_are_not_zeros(tmp_path: Path) -> None:
    # Walk-through 4: no "netdicom: error:" line (find and echo have one), and "the peer
    # reports 0 completed, 0 failed" for a peer that reported no counts at all.
    result = _get_from(_get_refused_without_counts, tmp_path / "out")
    assert result.returncode == 1
    assert "netdicom: error: C-GET failed: " in result.stderr and "0xC123" in result.stderr
    assert "the peer gave no sub-operation counts" in result.stderr
    assert "0 completed" not in result.stderr
    assert "hint:" not in result.stderr or "128" not in result.stderr


def _get_unreadable_failed_list(conn: socket.socket) -> None:
    import dataclasses

    qr = ScriptedQR(conn)
    context_id, request = qr.request()
    qr.store("1.2.826.0.1.99.8")
    final = dataclasses.replace(
        _get_rsp(request, status.SUBOPERATIONS_WARNING, None, 1, 2, 0), has_dataset=True
    )
    # (0008,0058) declares 32767 bytes, 4 follow: no data set.
    qr.send(context_id, final, bytes.fromhex("08005800ff7f0000") + b"1.2\x00")
    qr.release()


def test_an_unreadable_failed_list_is_said(tmp_path: Path) -> None:
    # It was logged where no user sees it: two failed instances, named nowhere, no word why.
    result = _get_from(_get_unreadable_failed_list, tmp_path / "out")
    assert result.returncode == 1
    assert "warning: the peer's Failed SOP Instance UID List could not be read" in result.stderr


def _get_with_growing_counts(conn: socket.socket) -> None:
    qr = ScriptedQR(conn)
    context_id, request = qr.request()
    qr.send(context_id, _get_rsp(request, status.PENDING, 1, 0, 0, 0))
    qr.store("1.2.826.0.1.99.11")
    qr.send(context_id, _get_rsp(request, status.PENDING, 5, 1, 0, 0))
    qr.store("1.2.826.0.1.99.12")
    qr.send(context_id, _get_rsp(request, status.PENDING, 9, 2, 0, 0))
    qr.send(context_id, _get_rsp(request, status.SUCCESS, None, 2, 0, 0))
    qr.release()


def test_sub_operation_counts_that_grow_are_noted(tmp_path: Path) -> None:
    # Remaining went 1, 5, 9 while completed went 0, 1, 2: only the final totals were checked.
    result = _get_from(_get_with_growing_counts, tmp_path / "out", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["stored"] == 2
    assert any("announced 1 sub-operations, then 11" in p for p in summary["problems"])


def _get_going_on_after_the_cancel(conn: socket.socket) -> None:
    from netdicom.core.dimse.messages_qr import CCancelRQ

    qr = ScriptedQR(conn)
    context_id, request = qr.request()
    qr.store("1.2.826.0.1.99.21")
    _, cancel = qr.request()
    assert isinstance(cancel, CCancelRQ), cancel
    for number in range(22, 25):
        qr.store(f"1.2.826.0.1.99.{number}")
    qr.send(context_id, _get_rsp(request, status.CANCEL, 0, 4, 0, 0))
    qr.release()


def test_instances_after_the_cancel_are_counted(tmp_path: Path) -> None:
    # --max 1 stored four, without a word about the three the peer sent after the cancel.
    with scripted_peer(_get_going_on_after_the_cancel) as port:
        result = run_cli("get", f"127.0.0.1:{port}", "StudyInstanceUID=1.2.3", "--max", "1",
                         "--out", str(tmp_path / "out"), "--timeout", "5", "--json")  # fmt: skip
    summary = json.loads(result.stdout)
    assert summary["stored"] == 4, result.stderr
    assert any("3 instance(s) came after our C-CANCEL-RQ" in p for p in summary["problems"])


def test_rejected_get_leaves_no_incoming_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = _get_from(_reject, out, "--json")
    assert result.returncode == 5, result.stderr
    assert json.loads(result.stdout)["error"].startswith("association rejected")
    assert not out.exists()  # nothing stored: no folder made by this run left behind


def test_failed_sub_operations_fail_whatever_the_status() -> None:
    from netdicom.cli.get import exit_code
    from netdicom.services.retrieve_common import Progress, RetrieveOutcome

    # Cancelled by us (--max): 0 when nothing failed, 1 when the peer counts failures.
    clean = RetrieveOutcome(status.CANCEL, Progress(2, 1, 0, 0), cancelled=True)
    assert exit_code([clean], [], False, "get") == 0
    failed = RetrieveOutcome(status.CANCEL, Progress(2, 1, 1, 0), cancelled=True)
    assert exit_code([failed], [], False, "get") == 1


@pytest.mark.parametrize("json_output", [False, True])
def test_a_match_that_cannot_be_retrieved_is_not_nothing_to_retrieve(
    tmp_path: Path, json_output: bool
) -> None:
    # Walkthrough 6b: an instance without a Study Instance UID (Type 1, but found in the wild)
    # was found by the C-FIND, skipped, and get said "nothing to retrieve", exit 0.
    from tests.dicomfiles import write_instance

    orphan = make_dataset(sop_instance_uid="1.2.826.0.1.43.1")
    del orphan.StudyInstanceUID
    write_instance(tmp_path / "served" / "orphan.dcm", orphan)
    port = free_port()
    with running(serve_argv(tmp_path / "served", port), port):
        result = run_cli("get", f"127.0.0.1:{port}", "--level", "image",
                         "SOPInstanceUID=1.2.826.0.1.43.1", "SOPClassUID=",
                         "--out", str(tmp_path / "out"), *(["--json"] if json_output else []))  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "StudyInstanceUID='' skipped" in result.stderr
    if json_output:
        assert "cannot be retrieved" in json.loads(result.stdout)["error"]
    else:
        assert "nothing retrieved: 1 match(es) cannot be retrieved" in result.stderr


@pytest.mark.parametrize(("policy", "files", "changed_kept"), [
    ("keep", 3, True), ("overwrite", 3, False), ("rename", 6, True),
])  # fmt: skip
def test_get_on_duplicate_decides_what_a_second_run_does(
    server: tuple[int, Path], tmp_path: Path, policy: str, files: int, changed_kept: bool
) -> None:
    # Walkthrough 6a, 6d: a second run kept every file already there, even one that had
    # changed, and said "stored 3"; get had no --on-duplicate as serve has.
    from pydicom import dcmread

    port, _ = server
    argv = ["get", f"ARCHIVE@127.0.0.1:{port}", f"StudyInstanceUID={STUDY_A}",
            "--out", str(tmp_path)]  # fmt: skip
    assert run_cli(*argv).returncode == 0
    first = sorted(tmp_path.rglob("*.dcm"))[0]
    local = dcmread(first)
    local.PatientName = "CHANGED^HERE"
    local.save_as(first)
    again = run_cli(*argv, "--on-duplicate", policy)
    assert again.returncode == 0, again.stderr
    assert len(list(tmp_path.rglob("*.dcm"))) == files
    assert (str(dcmread(first).PatientName) == "CHANGED^HERE") is changed_kept
    # Kept files are said to be kept: "3 stored" alone hid that one was older than the peer's.
    note = "(3 already there: kept as they were, not replaced by the peer's copies;"
    assert (note in again.stderr) is (policy == "keep"), again.stderr
    reported = json.loads(run_cli(*argv, "--on-duplicate", policy, "--json").stdout)
    assert reported["kept_existing"] == (3 if policy == "keep" else 0)
    assert all(r["kept_existing"] is (policy == "keep") for r in reported["received"])


@pytest.mark.parametrize("keys", [[], ["PatientID=*"]])
def test_get_all_retrieves_every_entity_the_peer_lists(
    server: tuple[int, Path], tmp_path: Path, keys: list[str]
) -> None:
    # Walkthrough 6d: an archive could not be migrated whole without inventing a narrowing
    # key (which left studies without it behind) or dodging the check with `**`.
    port, _ = server
    result = run_cli("get", f"ARCHIVE@127.0.0.1:{port}", *keys, "--all",
                     "--out", str(tmp_path), "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["stored"] == 5  # both studies (3 + 2)
    assert "C-FIND: 2 studies" in result.stderr


def test_get_by_study_uid_receives_jpeg_ls_ct(tmp_path: Path) -> None:
    # Walkthrough 6d: with Study Instance UIDs no C-FIND is made, so the curated 32 SOP
    # classes were proposed syntax by syntax: the 128 contexts ran out before JPEG-LS, and a
    # study's JPEG-LS CT images were "not sent: transfer syntax not accepted".
    from pydicom.encaps import encapsulate

    from netdicom.archive.matching import Model
    from netdicom.services.get_scu import CURATED_SOP_CLASSES, get_contexts
    from tests.dicomfiles import write_instance

    jpeg_ls = "1.2.840.10008.1.2.4.80"
    proposal = get_contexts(Model.STUDY_ROOT, CURATED_SOP_CLASSES)
    assert any(c.abstract_syntax == CT and c.transfer_syntaxes == (jpeg_ls,)
               for c in proposal.contexts)  # fmt: skip
    ds = make_dataset(study_uid="1.2.826.0.1.44.1", sop_instance_uid="1.2.826.0.1.44.1.1")
    ds.PixelData = encapsulate([b"\xff\xd8not really JPEG-LS\xff\xd9"])
    ds["PixelData"].VR = "OB"
    write_instance(tmp_path / "served" / "ls.dcm", ds, jpeg_ls)
    port = free_port()
    with running(serve_argv(tmp_path / "served", port), port):
        result = run_cli("get", f"127.0.0.1:{port}", "StudyInstanceUID=1.2.826.0.1.44.1",
                         "--out", str(tmp_path / "out"), "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["stored"] == 1


def test_get_all_with_a_match_it_cannot_retrieve_says_so_last(tmp_path: Path) -> None:
    # Verification of walkthrough 6: "C-GET Success ... stored", then exit 1 with no word why.
    from tests.dicomfiles import write_instance

    orphan = make_dataset(sop_instance_uid="1.2.826.0.1.45.1")
    del orphan.StudyInstanceUID
    write_instance(tmp_path / "served" / "orphan.dcm", orphan)
    make_files(tmp_path / "served" / "a", 1, study_uid="1.2.826.0.1.45.2")
    port = free_port()
    with running(serve_argv(tmp_path / "served", port), port):
        result = run_cli("get", f"127.0.0.1:{port}", "--all", "--out", str(tmp_path / "out"))
        quiet = run_cli("get", f"127.0.0.1:{port}", "--all", "-q",
                        "--out", str(tmp_path / "out-q"))  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert result.stderr.rstrip().endswith(
        "netdicom: error: 1 match(es) not retrieved: no usable unique key"
    )
    assert quiet.returncode == 1 and "not retrieved" not in quiet.stderr  # -q: the exit code


def test_patients_sharing_an_id_under_two_issuers_are_not_merged(tmp_path: Path) -> None:
    # Verification of walkthrough 6: resolved level by level with the Patient ID alone, the
    # study level matched both patients with ID P1 and retrieved the other one's study.
    from tests.dicomfiles import write_instance

    for name, issuer, study in (("ALPHA^ONE", "HOSP_A", "1.2.826.0.1.46.1"),
                                ("BETA^TWO", "HOSP_B", "1.2.826.0.1.46.2")):  # fmt: skip
        ds = make_dataset(patient_id="P1", patient_name=name, study_uid=study)
        ds.IssuerOfPatientID = issuer
        write_instance(tmp_path / "served" / f"{issuer}.dcm", ds)
    port = free_port()
    with running(serve_argv(tmp_path / "served", port), port):
        result = run_cli("get", f"127.0.0.1:{port}", "--model", "patient", "--level", "study",
                         "PatientName=ALPHA*", "--out", str(tmp_path / "out"), "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    from pydicom import dcmread

    (got,) = (tmp_path / "out").rglob("*.dcm")
    assert str(dcmread(got).PatientName) == "ALPHA^ONE"


@pytest.mark.parametrize("command", ["get", "move", "find"])
def test_an_unusable_out_folder_is_bad_input_before_any_query(tmp_path: Path, command: str) -> None:
    # Walkthrough 7a: found after the C-FIND, in words such as "[Errno 20] Not a directory",
    # without the --json summary; a file given as --out was exit 2, one level down exit 3.
    # Nothing listens on the port: had the peer been asked, the exit would be 4.
    (tmp_path / "afile").write_text("x")
    extra = ["--listen", str(free_port())] if command == "move" else []
    for out, why in [("afile", "a file is in the way, not a folder"),
                     ("afile/sub", "cannot create it: Not a directory")]:  # fmt: skip
        result = run_cli(command, f"127.0.0.1:{free_port()}", "PatientID=X", *extra,
                         "--out", str(tmp_path / out), "--json")  # fmt: skip
        assert result.returncode == 3, result.stderr
        assert f"netdicom: error: --out {tmp_path / out}: {why}" in result.stderr
        if command == "find":
            assert json.loads(result.stdout) == []
        else:
            assert json.loads(result.stdout)["error"] == f"--out {tmp_path / out}: {why}"


def test_a_folder_that_cannot_be_made_leaves_no_parents_behind(tmp_path: Path) -> None:
    too_long = tmp_path / "made" / "on" / ("x" * 300)
    result = run_cli("get", f"127.0.0.1:{free_port()}", "PatientID=X", "--out", str(too_long))
    assert result.returncode == 3
    assert "cannot create it: File name too long" in result.stderr
    assert not (tmp_path / "made").exists()


def test_serve_dir_that_is_a_file_is_bad_input(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    result = run_cli("serve", "--dir", str(tmp_path / "afile"), "--port", str(free_port()))
    assert result.returncode == 3
    assert f"--dir {tmp_path / 'afile'}: a file is in the way, not a folder" in result.stderr


def test_get_by_unique_key_names_a_sop_class_the_curated_set_lacks(tmp_path: Path) -> None:
    # Walkthrough 7a: a study with a private SOP class, asked by StudyInstanceUID (no C-FIND,
    # the curated set proposed): the hint spoke of transfer syntaxes and --ts.
    from tests.dicomfiles import write_instance

    private = "1.2.826.0.1.3680043.9999.1"
    study = "1.2.826.0.1.3680043.10.54.77"
    write_instance(tmp_path / "served" / "ct.dcm", make_dataset(study_uid=study))
    write_instance(tmp_path / "served" / "p.dcm", make_dataset(study_uid=study, sop_class=private))
    port = free_port()
    argv = ["get", f"127.0.0.1:{port}", f"StudyInstanceUID={study}"]
    with running(serve_argv(tmp_path / "served", port), port):
        short = run_cli(*argv, "--out", str(tmp_path / "a"))
        whole = run_cli(*argv, "--out", str(tmp_path / "b"), "--sop-class", private)
    assert short.returncode == 1
    assert f"(the peer names {private}): add --sop-class {private}" in short.stderr
    assert "--ts" not in short.stderr
    assert whole.returncode == 0, whole.stderr
    assert len(list((tmp_path / "b").rglob("*.dcm"))) == 2


def test_a_patient_level_retrieve_never_brings_another_issuers_patient(tmp_path: Path) -> None:
    # Walkthrough 7b: `--level patient PatientID=PAT12 IssuerOfPatientID=HOSP_A` matched one
    # patient and retrieved by PatientID alone: HOSP_B's patient PAT12 came too, exit 0.
    from pydicom import dcmread

    from tests.dicomfiles import write_instance

    for issuer, name, study in [("HOSP_A", "ALPHA^A", "1.2.826.0.1.3680043.10.54.80"),
                                ("HOSP_B", "BETA^B", "1.2.826.0.1.3680043.10.54.81")]:  # fmt: skip
        ds = make_dataset(patient_id="PAT12", patient_name=name, study_uid=study)
        ds.IssuerOfPatientID = issuer
        write_instance(tmp_path / "served" / f"{issuer}.dcm", ds)
    write_instance(
        tmp_path / "served" / "solo.dcm", make_dataset(patient_id="SOLO", patient_name="SOLO^S")
    )
    port = free_port()
    base = ["get", f"127.0.0.1:{port}", "--model", "patient"]

    def names(out: str) -> list[str]:
        return sorted(str(dcmread(p).PatientName) for p in (tmp_path / out).rglob("*.dcm"))

    with running(serve_argv(tmp_path / "served", port), port):
        narrowed = run_cli(*base, "--level", "patient", "PatientID=PAT12",
                           "IssuerOfPatientID=HOSP_A", "--out", str(tmp_path / "a"))  # fmt: skip
        by_study = run_cli(*base, "--level", "study", "PatientID=PAT12",
                           "IssuerOfPatientID=HOSP_A", "--out", str(tmp_path / "b"))  # fmt: skip
        by_id = run_cli(
            *base, "--level", "patient", "PatientID=PAT12", "--out", str(tmp_path / "c")
        )
        unique = run_cli(
            *base, "--level", "patient", "PatientName=SOLO*", "--out", str(tmp_path / "d")
        )
        planned = run_cli(*base, "--level", "patient", "PatientID=PAT12",
                          "IssuerOfPatientID=HOSP_A", "--dry-run", "--json")  # fmt: skip
    assert narrowed.returncode == 1 and names("a") == []
    assert (
        "PatientID='PAT12' skipped (2 patients on the peer share this Patient ID" in narrowed.stderr
    )
    assert "retrieve at study level (--level study, same keys)" in narrowed.stderr
    assert by_study.returncode == 0 and names("b") == ["ALPHA^A"], by_study.stderr
    assert by_id.returncode == 0 and names("c") == ["ALPHA^A", "BETA^B"]  # the ID asked for
    assert unique.returncode == 0 and names("d") == ["SOLO^S"], unique.stderr
    # --dry-run ends as the run would: the match left out, exit 1 (it was 0, an empty plan).
    assert planned.returncode == 1
    (skipped,) = json.loads(planned.stdout)["skipped"]
    assert skipped["match"] == "PatientID='PAT12'" and "share this Patient ID" in skipped["why"]


_GET_SCP_SENDING_MORE = """
import sys
from pydicom import dcmread
from pynetdicom import AE, evt, StoragePresentationContexts
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelGet

def on_get(event):
    files = [dcmread(path) for path in sys.argv[2:]]
    yield len(files)
    for ds in files:  # the asked study's instance, and another patient's
        yield 0xFF00, ds

ae = AE("SENDSMORE")
ae.add_supported_context(StudyRootQueryRetrieveInformationModelGet)
for context in StoragePresentationContexts:
    ae.add_supported_context(context.abstract_syntax, scu_role=False, scp_role=True)
ae.start_server(("127.0.0.1", int(sys.argv[1])), evt_handlers=[(evt.EVT_C_GET, on_get)])
"""


def test_an_instance_no_request_named_is_said(tmp_path: Path) -> None:
    # Walkthrough 7c: a peer sent another patient's instance with the study asked for; it was
    # stored in the folder without a word.
    import sys

    from tests.dicomfiles import write_instance

    asked = write_instance(
        tmp_path / "a.dcm", make_dataset(study_uid="1.2.826.0.1.3680043.10.54.5")
    )
    other = write_instance(
        tmp_path / "b.dcm",
        make_dataset(study_uid="1.2.826.0.1.3680043.10.54.6", patient_id="OTHER"),
    )
    script = tmp_path / "scp.py"
    script.write_text(_GET_SCP_SENDING_MORE)
    port = free_port()
    with running([sys.executable, str(script), str(port), str(asked), str(other)], port):
        result = run_cli("get", f"127.0.0.1:{port}", "StudyInstanceUID=1.2.826.0.1.3680043.10.54.5",
                         "--out", str(tmp_path / "out"), "--json")  # fmt: skip
    report = json.loads(result.stdout)
    assert report["stored"] == 2
    (problem,) = [p for p in report["problems"] if "no request named" in p]
    assert "1 instance(s) that no request named arrived" in problem
    assert "StudyInstanceUID is '1.2.826.0.1.3680043.10.54.6'" in problem
    assert result.returncode == 0  # stored as answered; said, not failed


def test_a_failed_check_leaves_no_new_folder_and_a_syntax_is_no_sop_class(tmp_path: Path) -> None:
    # Walkthrough 7 verification: the --out check made the folder, and a run that stored
    # nothing (the peer down) left it empty; and Big Endian instances of a CT (a class the
    # curated set holds) got the hint to add --sop-class.
    import sys

    from pydicom.uid import ExplicitVRBigEndian

    from tests.dicomfiles import write_instance

    refused = run_cli("get", f"127.0.0.1:{free_port()}", "StudyInstanceUID=1.2.3",
                      "--out", str(tmp_path / "dated" / "today"))  # fmt: skip
    assert refused.returncode == 4 and not (tmp_path / "dated").exists()
    held = write_instance(
        tmp_path / "ct.dcm", make_dataset(study_uid="1.2.826.0.1.3680043.10.54.7")
    )
    script = tmp_path / "scp.py"
    # Held (it says) in Explicit VR Big Endian, which the proposal for CT does not hold.
    script.write_text(_GET_SCP_SENDING_MORE.replace(
        "for ds in files:",
        f"for ds in files:\n        ds.file_meta.TransferSyntaxUID = {str(ExplicitVRBigEndian)!r}",
    ))  # fmt: skip
    port = free_port()
    with running([sys.executable, str(script), str(port), str(held)], port):
        result = run_cli("get", f"127.0.0.1:{port}", "StudyInstanceUID=1.2.826.0.1.3680043.10.54.7",
                         "--out", str(tmp_path / "out"))  # fmt: skip
    assert result.returncode == 1
    assert "--sop-class" not in result.stderr
