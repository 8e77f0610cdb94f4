"""What we say about a peer that sends the wrong thing, in the words of the standard, once:
the real `netdicom` command against scripted peers on 127.0.0.1 (more in test_peer_text.py)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

from netdicom.core.dimse import CEchoRSP, CFindRSP, CGetRSP, CStoreRSP
from netdicom.core.dimse import encode_command as command
from netdicom.core.pdu import (
    AbortPDU,
    AssociateAC,
    AssociateRQ,
    ContextResult,
    PresentationContextAC,
    ReleaseRQ,
    UserInformation,
    encode_pdu,
)
from tests.cli.test_peer_text import (
    EVIL,
    EVIL_SHOWN,
    _answer_first,
    _assert_nothing_raw,
    _cli,
    _read_request,
    _release,
)
from tests.dicomfiles import make_files
from tests.hardening.raw import RawPeer, ScriptedServer, accept_echo, pdata


def _find_response(context_id: int, message_id: int) -> bytes:
    return pdata(context_id, command(CFindRSP(message_id, 0)))


def test_store_names_the_wrong_response_in_dimse_words(tmp_path: Path) -> None:
    files = make_files(tmp_path, 1)
    with ScriptedServer(_answer_first(_find_response)) as server:
        code, out, err = _cli(server.port, "store", str(files[0]), "--no-progress")
    assert code == 6, out + err
    assert "expected a C-STORE-RSP, got a C-FIND-RSP" in out + err
    assert "CFindRSP" not in out + err


def test_store_reports_the_file_whose_response_was_wrong(tmp_path: Path) -> None:
    # Was: "Stored 0 of 0 instances", exit 0: the file in the window vanished from the report.
    files = make_files(tmp_path, 1)
    with ScriptedServer(_answer_first(_find_response)) as server:
        code, out, err = _cli(server.port, "store", str(files[0]), "--json")
    assert code == 6, out + err
    *lines, summary = (json.loads(line) for line in out.splitlines())
    assert [(line["file"], line["result"]) for line in lines] == [(str(files[0]), "failed")]
    # Sent whole, answered with something else: it may have been stored, and why it is not
    # known is said.
    assert "may have been stored (expected a C-STORE-RSP" in lines[0]["reason"]
    assert summary["summary"]["files"] == summary["summary"]["failed"] == 1


def _accept_first_syntax(peer: RawPeer) -> None:
    """Accept every proposed context with the first transfer syntax it offers."""
    rq = peer.read_pdu()
    assert isinstance(rq, AssociateRQ), rq
    contexts = tuple(
        PresentationContextAC(pc.context_id, ContextResult.ACCEPTANCE, pc.transfer_syntaxes[0])
        for pc in rq.presentation_contexts
    )
    info = UserInformation(max_length=16384)
    peer.send_pdu(AssociateAC(rq.called_ae_title, rq.calling_ae_title, contexts, info))


def test_get_escapes_the_error_comment_of_its_final_response(tmp_path: Path) -> None:
    def script(peer: RawPeer) -> None:
        _accept_first_syntax(peer)
        context_id, message_id = _read_request(peer)
        response = CGetRSP(message_id, 0xC000, error_comment=EVIL)
        peer.send(pdata(context_id, command(response)))
        _release(peer)

    with ScriptedServer(script) as server:
        code, out, err = _cli(
            server.port, "get", "StudyInstanceUID=1.2.3", "--out", str(tmp_path / "out")
        )
    assert code == 1, out + err
    _assert_nothing_raw(out, err)
    assert EVIL_SHOWN in err


def _answer_association(contexts: tuple[PresentationContextAC, ...]) -> ScriptedServer:
    def script(peer: RawPeer) -> None:
        rq = peer.read_pdu()
        assert isinstance(rq, AssociateRQ), rq
        info = UserInformation(max_length=16384)
        peer.send_pdu(AssociateAC(rq.called_ae_title, rq.calling_ae_title, contexts, info))
        peer.wait_closed(10)

    return ScriptedServer(script)


def test_an_accept_that_answers_no_context_is_said_so() -> None:
    # Our encoder will not build such an A-ASSOCIATE-AC: take one with a context and cut the
    # presentation context item out (PS3.8 9.3.3: type 0x21, 2-byte length after 2 bytes).
    def script(peer: RawPeer) -> None:
        rq = peer.read_pdu()
        assert isinstance(rq, AssociateRQ), rq
        contexts = (PresentationContextAC(1, ContextResult.ACCEPTANCE, "1.2.840.10008.1.2"),)
        info = UserInformation(max_length=16384)
        whole = encode_pdu(AssociateAC(rq.called_ae_title, rq.calling_ae_title, contexts, info))
        start = whole.index(b"\x21\x00", 74)  # after the 6 + 68 fixed bytes
        (length,) = struct.unpack_from(">H", whole, start + 2)
        body = whole[6:start] + whole[start + 4 + length :]
        peer.send(whole[:2] + struct.pack(">I", len(body)) + body)
        peer.wait_closed(10)

    with ScriptedServer(script) as server:
        code, _, err = _cli(server.port, "echo")
    assert code == 6, err
    assert "answers no context" in err and "proposes" not in err


def test_an_answer_to_a_context_never_proposed_names_the_accept_once() -> None:
    answer = (PresentationContextAC(99, ContextResult.ACCEPTANCE, "1.2.840.10008.1.2"),)
    with _answer_association(answer) as server:
        code, _, err = _cli(server.port, "echo")
    assert code == 6, err
    line = err.splitlines()[0]
    assert "presentation context 99, which was never proposed" in line
    assert line.count("A-ASSOCIATE-AC") == 1, line


def test_store_says_when_the_peer_aborts_its_release(tmp_path: Path) -> None:
    # Every file answered, then an A-ABORT instead of A-RELEASE-RP: nothing was lost (exit
    # 0), but the text output said nothing of it (only --json's "error" did).
    files = make_files(tmp_path, 1)

    def script(peer: RawPeer) -> None:
        _accept_first_syntax(peer)
        context_id, message_id = _read_request(peer)
        peer.send(pdata(context_id, command(CStoreRSP(message_id, 0))))
        assert isinstance(peer.read_pdu(), ReleaseRQ)
        peer.send_pdu(AbortPDU(2, 0))
        peer.wait_closed(10)

    with ScriptedServer(script) as server:
        code, out, err = _cli(server.port, "store", str(files[0]), "--no-progress")
    assert code == 0, out + err
    assert "Stored 1 of 1" in out + err
    assert "warning: every file was stored, then:" in err and "abort" in err


def _abort_release(peer: RawPeer) -> None:
    assert isinstance(peer.read_pdu(), ReleaseRQ)
    peer.send_pdu(AbortPDU(2, 0))
    peer.wait_closed(10)


def test_echo_keeps_its_result_when_the_release_is_aborted() -> None:
    # Was exit 6 with only the abort said; the C-ECHO's own answer (here a failure status)
    # was lost. Now: the result and its exit code, then the release's failure. (With a
    # successful C-ECHO the release's failure is the error: tests/hardening.)
    def script(peer: RawPeer) -> None:
        accept_echo(peer)
        context_id, message_id = _read_request(peer)
        peer.send(pdata(context_id, command(CEchoRSP(message_id, 0x0110))))
        _abort_release(peer)

    with ScriptedServer(script) as server:
        code, out, err = _cli(server.port, "echo")
    assert code == 1, out + err
    assert "C-ECHO failed with status 0x0110" in err
    assert err.rstrip().splitlines()[-1].startswith("netdicom: error: then: association")


def test_find_shows_its_matches_when_the_release_is_aborted() -> None:
    def script(peer: RawPeer) -> None:
        accept_echo(peer)
        context_id, message_id = _read_request(peer)
        peer.send(pdata(context_id, command(CFindRSP(message_id, 0))))
        _abort_release(peer)

    with ScriptedServer(script) as server:
        code, out, err = _cli(server.port, "find", "PatientName=*")
    assert code == 0, out + err
    assert "0 matches" in err and "warning: all done, then:" in err
