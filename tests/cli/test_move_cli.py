"""`netdicom move` end to end: usage errors in process; A801 and a move to a receiver that
refuses everything as subprocesses against `netdicom serve`; counts that lie and a dropped
connection from a scripted C-MOVE SCP."""

from __future__ import annotations

import contextlib
import json
import socket
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from netdicom.cli.app import app
from netdicom.core.dimse import status
from netdicom.core.dimse.messages_qr import CGetRSP, CMoveRSP
from tests.cli.test_exit_codes import scripted_peer
from tests.cli.test_get_cli import ScriptedQR, retrieve_rsp
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
    assert "never a wildcard (PS3.4 C.2.2.2.4)" in result.output


def test_out_without_listen_is_said_to_be_ignored() -> None:
    # It was silently ignored: the instances go to --dest, not to --out.
    result = CliRunner().invoke(
        app, ["move", "127.0.0.1:9", f"StudyInstanceUID={STUDY}", "--dest", "X", "--out", "o"]
    )
    assert "--out: used only with --listen; ignored" in result.output
    assert result.exit_code == 4  # and then the connection is refused, as usual
    # --layout and --on-duplicate too (6v: ignored without a word).
    both = CliRunner().invoke(app, ["move", "127.0.0.1:9", f"StudyInstanceUID={STUDY}",
                                    "--dest", "X", "--layout", "{SOPInstanceUID}.dcm",
                                    "--on-duplicate", "overwrite"])  # fmt: skip
    assert "--layout, --on-duplicate: used only with --listen; ignored" in both.output


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
    # In text, the peer's one reason is given with the first UID, not repeated with each.
    text = run_cli("move", f"127.0.0.1:{server}", f"StudyInstanceUID={STUDY}", "--dest", "DEAD")
    failed = [line for line in text.stderr.splitlines() if line.startswith("  failed: ")]
    assert len(failed) == 2 and "cannot reach DEAD" in failed[0]
    assert failed[1].endswith("(the same)")


def test_listen_that_nothing_reaches_gets_a_hint(server: int, tmp_path: Path) -> None:
    # serve maps DEAD to a port nothing listens on, not to ours: every sub-operation fails,
    # and nothing said that the peer never reached the listener.
    listen = free_port()
    result = run_cli("move", f"127.0.0.1:{server}", f"StudyInstanceUID={STUDY}", "--aet", "DEAD",
                     "--listen", str(listen), "--listen-host", "127.0.0.1",
                     "--out", str(tmp_path), "--grace", "1")  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert f"hint: nothing reached 127.0.0.1:{listen}" in result.stderr
    assert f"maps DEAD to this host and port {listen}" in result.stderr


def test_listen_hint_is_not_given_when_the_peer_could_not_read_its_files(tmp_path: Path) -> None:
    # The peer answered C003 (its files gone): pointing at the AE title mapping misled.
    root = tmp_path / "served"
    files = make_files(root, 1, study_uid=STUDY)
    port, listen = free_port(), free_port()
    with running(serve_argv(root, port, "--remote", f"ME=127.0.0.1:{listen}"), port):
        files[0].unlink()  # indexed, then gone
        result = run_cli("move", f"127.0.0.1:{port}", f"StudyInstanceUID={STUDY}", "--aet", "ME",
                         "--listen", str(listen), "--listen-host", "127.0.0.1",
                         "--out", str(tmp_path / "out"), "--grace", "1")  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "0xC003" in result.stderr and "hint: nothing reached" not in result.stderr


def test_move_dry_run_needs_no_destination(server: int, tmp_path: Path) -> None:
    result = run_cli("move", f"127.0.0.1:{server}", "PatientID=PAT001", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"C-MOVE QueryRetrieveLevel=STUDY StudyInstanceUID={STUDY}"


def test_move_json_without_a_match_and_dry_run_json(server: int) -> None:
    none = run_cli("move", f"127.0.0.1:{server}", "PatientID=NOSUCH", "--dest", "X", "--json")
    assert none.returncode == 0, none.stderr
    summary = json.loads(none.stdout)
    # A move to another AE: what it stored cannot be seen from here.
    assert summary["service"] == "move" and summary["requests"] == [] and summary["stored"] is None
    dry = run_cli("move", f"127.0.0.1:{server}", "PatientID=PAT001", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["plan"] == [
        {"QueryRetrieveLevel": "STUDY", "StudyInstanceUID": STUDY}
    ]


def _move_rsp(request: Any, code: int, *counts: int | None) -> CGetRSP | CMoveRSP:
    return retrieve_rsp(CMoveRSP, request, code, *counts)


def _move_lying(conn: socket.socket) -> None:
    # PS3.4 C.4.2.3: 500 completed sub-operations, without ever calling the destination.
    qr = ScriptedQR(conn)
    context_id, request = qr.request()
    qr.send(context_id, _move_rsp(request, status.PENDING, 500, 0, 0, 0))
    qr.send(context_id, _move_rsp(request, status.SUCCESS, None, 500, 0, 0))
    qr.release()


def _move_then_close(conn: socket.socket) -> None:
    qr = ScriptedQR(conn)
    context_id, request = qr.request()
    qr.send(context_id, _move_rsp(request, status.PENDING, 2, 0, 0, 0))


def _listen(out: Path) -> list[str]:
    return ["--listen", str(free_port()), "--listen-host", "127.0.0.1", "--out", str(out),
            "--grace", "0", "--timeout", "5"]  # fmt: skip


def test_move_to_ourselves_checks_the_counts(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with scripted_peer(_move_lying) as port:
        result = run_cli("move", f"127.0.0.1:{port}", "StudyInstanceUID=1.2.3", *_listen(out))
    assert result.returncode == 1, result.stderr
    assert "the peer reports 500 completed sub-operations, but 0 instances were stored here" in (
        result.stderr
    )
    assert not out.exists()  # no empty .incoming, and no empty folder made by this run


def test_move_to_another_ae_does_not_pretend_to_check(tmp_path: Path) -> None:
    with scripted_peer(_move_lying) as port:
        result = run_cli("move", f"127.0.0.1:{port}", "StudyInstanceUID=1.2.3",
                         "--dest", "ELSEWHERE", "--timeout", "5")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "500 completed" in result.stderr and "not seen from here" in result.stderr
    assert "arrived" not in result.stderr and "stored" not in result.stderr
    with scripted_peer(_move_lying) as port:
        result = run_cli("move", f"127.0.0.1:{port}", "StudyInstanceUID=1.2.3",
                         "--dest", "ELSEWHERE", "--timeout", "5", "--json")  # fmt: skip
    summary = json.loads(result.stdout)
    assert summary["stored"] is None and summary["problems"] == []


def test_move_json_after_a_dropped_connection(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with scripted_peer(_move_then_close) as port:
        result = run_cli("move", f"127.0.0.1:{port}", "StudyInstanceUID=1.2.3", *_listen(out),
                         "--json")  # fmt: skip
    assert result.returncode == 6, result.stderr
    summary = json.loads(result.stdout)
    assert summary["stored"] == 0 and summary["requests"] == []
    assert "closed the connection" in summary["error"]
    assert not out.exists()  # nothing stored: no folder made by this run left behind


def test_listen_failure_leaves_no_incoming_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # The peer (port 9, discard) is never called: the receiver cannot listen first.
        result = run_cli("move", "127.0.0.1:9", "StudyInstanceUID=1.2.3", "--listen", str(port),
                         "--listen-host", "127.0.0.1", "--out", str(out))  # fmt: skip
    assert result.returncode == 3, result.stderr
    assert not out.exists() or list(out.iterdir()) == []  # not even made: checked first


def test_listen_port_0_is_a_usage_error() -> None:
    # The peer sends to the port it has configured for our AE title: an ephemeral port would
    # receive nothing (it said "0 instances were stored here", exit 1).
    result = run_cli("move", "127.0.0.1:1", "StudyInstanceUID=1.2.3", "--listen", "0")
    assert result.returncode == 2, result.stderr
    assert "--listen" in result.stderr


def _move_silent(conn: socket.socket) -> None:
    # A C-MOVE SCP that sends nothing while it tries an unreachable destination.
    qr = ScriptedQR(conn)
    qr.request()
    time.sleep(4)


def test_a_silent_move_says_the_peer_may_be_waiting_for_the_destination() -> None:
    # The client's timeout could expire first and blame only the PACS ("no DIMSE message").
    with scripted_peer(_move_silent) as port:
        result = run_cli("move", f"127.0.0.1:{port}", "StudyInstanceUID=1.2.3",
                         "--dest", "ELSEWHERE", "--timeout", "1")  # fmt: skip
    assert result.returncode == 7, result.stderr
    assert "the peer may still be trying to reach ELSEWHERE" in result.stderr


def _never_answers_the_association(conn: socket.socket) -> None:
    conn.recv(65536)  # the A-ASSOCIATE-RQ, never answered
    time.sleep(4)


def test_no_destination_hint_when_no_c_move_was_sent() -> None:
    # The association itself timed out: "the peer may still be trying to reach DEST" misled.
    with scripted_peer(_never_answers_the_association) as port:
        result = run_cli("move", f"127.0.0.1:{port}", "StudyInstanceUID=1.2.3",
                         "--dest", "ELSEWHERE", "--timeout", "1")  # fmt: skip
    assert result.returncode == 7, result.stderr
    assert "ACSE timeout" in result.stderr
    assert "may still be trying to reach" not in result.stderr


def _move_calling_another_title(listen: int) -> Callable[[socket.socket], None]:
    def behaviour(conn: socket.socket) -> None:
        from netdicom.core import uids
        from netdicom.core.acse import ProposedContext
        from netdicom.core.dimse import CStoreRQ, encode_command
        from netdicom.core.pdu import AssociateAC, PDataTF
        from netdicom.services.find_scp import encode_identifier
        from tests.dicomfiles import CT, make_dataset
        from tests.hardening.raw import RawPeer, echo_rq, pdata

        qr = ScriptedQR(conn)
        context_id, request = qr.request()
        with RawPeer(listen) as sub:  # the sub-association calls WRONGAE, not NETDICOM
            rq = echo_rq("WRONGAE", contexts=[ProposedContext(CT, (uids.EXPLICIT_VR_LE,))])
            assert isinstance(sub.associate(rq), AssociateAC)
            ds = make_dataset(sop_instance_uid="1.2.826.0.1.66.1", study_uid="1.2.3")
            sub.send(pdata(1, encode_command(CStoreRQ(1, CT, "1.2.826.0.1.66.1"))))
            sub.send(pdata(1, encode_identifier(ds, uids.EXPLICIT_VR_LE), command=False))
            assert isinstance(sub.read_pdu(), PDataTF)
            sub.release()
        qr.send(context_id, _move_rsp(request, status.SUCCESS, None, 1, 0, 0))
        qr.release()

    return behaviour


def test_a_sub_association_calling_another_title_is_warned_about(tmp_path: Path) -> None:
    # Accepted (the instance is what was asked for), but a wrong title is what a misconfigured
    # peer sends: it passed in silence.
    listen = free_port()
    out = tmp_path / "out"
    with scripted_peer(_move_calling_another_title(listen)) as port:
        result = run_cli("move", f"127.0.0.1:{port}", "StudyInstanceUID=1.2.3",
                         "--listen", str(listen), "--listen-host", "127.0.0.1",
                         "--out", str(out), "--grace", "0", "--timeout", "5")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "called this receiver as 'WRONGAE', not NETDICOM: accepted" in result.stderr
    assert [p.name for p in out.rglob("*.dcm")] == ["1.2.826.0.1.66.1.dcm"]


def _move_with_garbage_on_the_listener(listen: int) -> Callable[[socket.socket], None]:
    def behaviour(conn: socket.socket) -> None:
        qr = ScriptedQR(conn)
        context_id, request = qr.request()
        with socket.create_connection(("127.0.0.1", listen), timeout=5) as garbage:
            garbage.sendall(b"GET / HTTP/1.0\r\n\r\n")
            with contextlib.suppress(OSError):
                garbage.recv(64)  # the A-ABORT
        qr.send(context_id, _move_rsp(request, status.SUCCESS, None, 0, 0, 0))
        qr.release()

    return behaviour


@pytest.mark.parametrize("json_flag", [[], ["--json"]], ids=["text", "json"])
def test_a_connection_to_the_receiver_that_is_not_dicom_is_warned_about(
    tmp_path: Path, json_flag: list[str]
) -> None:
    # It showed only as a count mismatch, if the peer claimed the instance; with --json (a
    # monitoring script's mode) not at all.
    listen = free_port()
    with scripted_peer(_move_with_garbage_on_the_listener(listen)) as port:
        result = run_cli("move", f"127.0.0.1:{port}", "StudyInstanceUID=1.2.3",
                         "--listen", str(listen), "--listen-host", "127.0.0.1", *json_flag,
                         "--out", str(tmp_path / "out"), "--grace", "1", "--timeout", "5")  # fmt: skip
    assert "1 connection(s) to the receiver did not speak DICOM" in result.stderr, result.stderr
    assert "unknown PDU type 0x47" in result.stderr


def test_listen_hint_when_the_peer_sent_everything_elsewhere(tmp_path: Path) -> None:
    # Walkthrough 6d: the peer maps our title to another receiver (here another serve; there,
    # serve itself, from the README's sample configuration): "6 completed, 0 stored here",
    # exit 1, and no word on why.
    root = tmp_path / "served"
    make_files(root, 2, study_uid=STUDY)
    port, other, listen = free_port(), free_port(), free_port()
    with (
        running(serve_argv(tmp_path / "other", other), other),
        running(serve_argv(root, port, "--remote", f"ME=127.0.0.1:{other}"), port),
    ):
        result = run_cli("move", f"127.0.0.1:{port}", f"StudyInstanceUID={STUDY}", "--aet", "ME",
                         "--listen", str(listen), "--listen-host", "127.0.0.1",
                         "--out", str(tmp_path / "out"), "--grace", "1")  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert f"hint: nothing reached 127.0.0.1:{listen}" in result.stderr


def test_move_listen_on_duplicate_overwrite_replaces_a_changed_copy(tmp_path: Path) -> None:
    from pydicom import dcmread

    root = tmp_path / "served"
    make_files(root, 1, study_uid=STUDY)
    port, listen = free_port(), free_port()
    argv = ["move", f"127.0.0.1:{port}", f"StudyInstanceUID={STUDY}", "--aet", "ME",
            "--listen", str(listen), "--listen-host", "127.0.0.1",
            "--out", str(tmp_path / "out"), "--grace", "1"]  # fmt: skip
    with running(serve_argv(root, port, "--remote", f"ME=127.0.0.1:{listen}"), port):
        assert run_cli(*argv).returncode == 0
        (copy,) = (tmp_path / "out").rglob("*.dcm")
        local = dcmread(copy)
        local.PatientName = "CHANGED^HERE"
        local.save_as(copy)
        kept = run_cli(*argv)
        assert kept.returncode == 0 and str(dcmread(copy).PatientName) == "CHANGED^HERE"
        kept_json = run_cli(*argv, "--json")
        replaced = run_cli(*argv, "--on-duplicate", "overwrite", "--json")
    # The kept file is said to be kept (it was "1 stored", older than the peer's copy).
    assert "1 stored in" in kept.stderr
    assert "(1 already there: kept as they were, not replaced" in kept.stderr
    assert json.loads(kept_json.stdout)["kept_existing"] == 1
    assert replaced.returncode == 0, replaced.stderr
    assert str(dcmread(copy).PatientName) != "CHANGED^HERE"
    assert json.loads(replaced.stdout)["kept_existing"] == 0


def test_move_listen_on_a_port_in_use_fails_before_the_c_find(server: int, tmp_path: Path) -> None:
    # Walkthrough 6d: the C-FIND ran ("C-FIND: 1 study matches"), then "cannot listen".
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        result = run_cli("move", f"127.0.0.1:{server}", "PatientID=PAT001", "--listen", str(busy),
                         "--listen-host", "127.0.0.1", "--out", str(tmp_path))  # fmt: skip
    assert result.returncode == 3, result.stderr
    assert f"cannot listen on 127.0.0.1:{busy}: the port is in use" in result.stderr
    assert "C-FIND:" not in result.stderr


_MOVE_SCP_THAT_CANNOT_SEND = textwrap.dedent(
    """
    import sys
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian
    from pynetdicom import AE, evt
    from pynetdicom.sop_class import CTImageStorage, StudyRootQueryRetrieveInformationModelMove

    def on_move(event):
        yield "127.0.0.1", int(sys.argv[2])
        yield 1
        ds = Dataset()
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = "1.2.826.0.1.3680043.10.54.90"
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRBigEndian
        yield 0xFF00, ds  # held big endian, which it cannot convert: the sub-operation fails

    ae = AE("MOVER")
    ae.add_supported_context(StudyRootQueryRetrieveInformationModelMove)
    ae.add_requested_context(CTImageStorage, [ExplicitVRLittleEndian])
    ae.start_server(("127.0.0.1", int(sys.argv[1])), evt_handlers=[(evt.EVT_C_MOVE, on_move)])
    """
)


def test_a_peer_that_connected_and_sent_nothing_is_not_told_to_fix_its_ae_mapping(
    tmp_path: Path,
) -> None:
    # Walkthrough 7c: the peer reached our listener, which refused what it proposed, and the
    # hint said "nothing reached ...: check that the peer maps ME to this host and port".
    import sys

    port, listen = free_port(), free_port()
    script = tmp_path / "mover.py"
    script.write_text(_MOVE_SCP_THAT_CANNOT_SEND)
    with running([sys.executable, str(script), str(port), str(listen)], port):
        result = run_cli("move", f"127.0.0.1:{port}", "StudyInstanceUID=1.2.3", "--aet", "ME",
                         "--listen", str(listen), "--listen-host", "127.0.0.1",
                         "--out", str(tmp_path / "out"), "--grace", "1")  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert f"hint: the peer connected to 127.0.0.1:{listen} (1 association(s))" in result.stderr
    assert "a transfer syntax it cannot convert" in result.stderr
    assert "nothing reached" not in result.stderr
