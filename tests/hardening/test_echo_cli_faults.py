"""`netdicom echo` (a subprocess) against scripted peers that misbehave: each ends with the
documented exit code (4 connect, 5 rejected, 6 aborted/protocol/closed, 7 timeout) in bounded
time, with a message that says what happened."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from netdicom.core.pdu import AbortPDU, AssociateAC, AssociateRJ, AssociateRQ, ReleaseRP, ReleaseRQ
from tests.hardening.raw import RawPeer, ScriptedServer, accept_echo, answer_echo
from tests.peers import free_port, run_cli

TIMEOUT = 1.0  # --timeout given to echo (connect, ACSE and DIMSE)
STARTUP = 3.0  # interpreter start and exit, generous for a loaded CI machine


def _echo(port: int, *extra: str) -> tuple[int, str, float]:
    started = time.monotonic()
    result = run_cli("echo", f"127.0.0.1:{port}", "--timeout", str(TIMEOUT), *extra, timeout=30)
    return result.returncode, result.stdout + result.stderr, time.monotonic() - started


def _read_rq(peer: RawPeer) -> None:
    peer.read_pdu()


def _stall(peer: RawPeer) -> None:
    # Hold the connection open, reading and ignoring, until the client goes away.
    peer.wait_closed(30)


def _reject(peer: RawPeer) -> None:
    _read_rq(peer)
    peer.send_pdu(AssociateRJ(1, 1, 3))
    peer.wait_closed(10)


def _abort_instead_of_ac(peer: RawPeer) -> None:
    _read_rq(peer)
    peer.send_pdu(AbortPDU(0, 0))


def _provider_abort_on_echo(peer: RawPeer) -> None:
    accept_echo(peer)
    peer.read_pdu()
    peer.send_pdu(AbortPDU(2, 6))


def _close_after_rq(peer: RawPeer) -> None:
    _read_rq(peer)


def _close_after_echo_rq(peer: RawPeer) -> None:
    accept_echo(peer)
    peer.read_pdu()


def _garbage_instead_of_ac(peer: RawPeer) -> None:
    _read_rq(peer)
    peer.send(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    # Our client answers garbage with an A-ABORT (Evt19 in Sta5: AA-8).
    answer = peer.read_pdu(5)
    assert isinstance(answer, AbortPDU) and (answer.source, answer.reason) == (2, 1), answer


def _garbage_instead_of_echo_rsp(peer: RawPeer) -> None:
    accept_echo(peer)
    peer.read_pdu()
    peer.send(b"\x04\x00\x00\x00\x00\x03abc")  # P-DATA-TF too short for its PDV header
    answer = peer.read_pdu(5)
    assert isinstance(answer, AbortPDU) and answer.source == 2, answer


def _stall_after_ac(peer: RawPeer) -> None:
    accept_echo(peer)
    peer.wait_closed(30)


def _stall_on_release(peer: RawPeer) -> None:
    accept_echo(peer)
    answer_echo(peer)
    assert isinstance(peer.read_pdu(), ReleaseRQ)
    # No A-RELEASE-RP: the client gives up after its ACSE timeout and aborts.
    answer = peer.read_pdu(10)
    assert isinstance(answer, AbortPDU), answer


def _close_on_release(peer: RawPeer) -> None:
    accept_echo(peer)
    answer_echo(peer)
    assert isinstance(peer.read_pdu(), ReleaseRQ)


def _release_collision(peer: RawPeer) -> None:
    # Both sides send A-RELEASE-RQ (PS3.8 §9.2.2 release collision): the requestor answers
    # first (AR-9), then we send our RP (AR-10 on its side).
    accept_echo(peer)
    answer_echo(peer)
    assert isinstance(peer.read_pdu(), ReleaseRQ)
    peer.send_pdu(ReleaseRQ())
    assert isinstance(peer.read_pdu(), ReleaseRP)
    peer.send_pdu(ReleaseRP())
    peer.wait_closed(10)


def _well_behaved(peer: RawPeer) -> None:
    accept_echo(peer)
    answer_echo(peer)
    assert isinstance(peer.read_pdu(), ReleaseRQ)
    peer.send_pdu(ReleaseRP())
    peer.wait_closed(10)


Script = Callable[[RawPeer], None]

# (script, exit code, words expected in the output, whether a timer has to expire first)
CASES: dict[str, tuple[Script, int, tuple[str, ...], bool]] = {
    "well-behaved": (_well_behaved, 0, ("Success",), False),
    "release-collision": (_release_collision, 0, ("Success",), False),
    "rejected": (_reject, 5, ("rejected",), False),
    "abort-instead-of-ac": (_abort_instead_of_ac, 6, ("aborted",), False),
    "provider-abort-on-echo": (_provider_abort_on_echo, 6, ("aborted",), False),
    "close-after-rq": (_close_after_rq, 6, ("closed",), False),
    "close-after-echo-rq": (_close_after_echo_rq, 6, ("closed",), False),
    "close-on-release": (_close_on_release, 6, ("closed",), False),
    "garbage-instead-of-ac": (_garbage_instead_of_ac, 6, ("aborted",), False),
    "garbage-instead-of-echo-rsp": (_garbage_instead_of_echo_rsp, 6, ("aborted",), False),
    "no-answer-to-rq": (_stall, 7, ("ACSE timeout",), True),
    "no-answer-to-echo": (_stall_after_ac, 7, ("DIMSE timeout",), True),
    "no-answer-to-release": (_stall_on_release, 7, ("A-RELEASE-RQ",), True),
}


@pytest.mark.parametrize("name", list(CASES))
def test_echo_against_misbehaving_peer(name: str) -> None:
    script, code, words, timed = CASES[name]
    with ScriptedServer(script) as server:
        returncode, output, seconds = _echo(server.port)
    assert returncode == code, output
    for word in words:
        assert word.lower() in output.lower(), output
    assert "Traceback" not in output
    assert seconds < STARTUP + (TIMEOUT if timed else 0.0), seconds
    assert not server.errors, server.errors


def test_echo_connection_refused() -> None:
    returncode, output, seconds = _echo(free_port())
    assert returncode == 4, output
    assert "refused" in output
    assert seconds < STARTUP


def _echo_answer(peer: RawPeer, code: int, comment: str | None = None) -> bytes:
    """Read the C-ECHO-RQ; the bytes of a C-ECHO-RSP to it with `code` (not sent)."""
    from netdicom.core.dimse import CEchoRQ, CEchoRSP, decode_command, encode_command
    from netdicom.core.pdu import PDataTF
    from tests.hardening.raw import pdata

    pdu = peer.read_pdu()
    assert isinstance(pdu, PDataTF), pdu
    request = decode_command(bytes(pdu.pdvs[0].data))
    assert isinstance(request, CEchoRQ), request
    answer = CEchoRSP(request.message_id, code, error_comment=comment)
    return pdata(pdu.pdvs[0].context_id, encode_command(answer))


def test_a_peer_that_asks_to_release_first_gets_its_reply() -> None:
    # PS3.8 Table 9-10: its A-RELEASE-RQ came before ours; closing without the A-RELEASE-RP
    # looked to the peer like a dropped connection.
    replies: list[object] = []

    def script(peer: RawPeer) -> None:
        from netdicom.core.pdu import encode_pdu

        accept_echo(peer)
        # The response and the A-RELEASE-RQ in one write: the RQ is there before the client
        # has finished with the response (else it is a release collision, another path).
        peer.send(_echo_answer(peer, 0) + encode_pdu(ReleaseRQ()))
        replies.append(peer.read_pdu())

    with ScriptedServer(script) as server:
        code, output, _ = _echo(server.port)
    assert code == 0, output
    assert server.errors == []
    assert len(replies) == 1 and isinstance(replies[0], ReleaseRP), replies


def _answer_with(code: int, comment: str | None) -> Callable[[RawPeer], None]:
    def script(peer: RawPeer) -> None:
        accept_echo(peer)
        peer.send(_echo_answer(peer, code, comment))
        if isinstance(peer.read_pdu(), ReleaseRQ):
            peer.send_pdu(ReleaseRP())

    return script


def test_a_failure_shows_the_peers_error_comment() -> None:
    with ScriptedServer(_answer_with(0xC000, "verification disabled")) as server:
        code, output, _ = _echo(server.port)
        json_code, json_output, _ = _echo(server.port, "--json")
    assert code == json_code == 1, output
    assert "C-ECHO failed with status 0xC000 (Failure): verification disabled" in output
    assert '"error_comment": "verification disabled"' in json_output


def test_a_warning_is_an_answer() -> None:
    # PS3.7 C.3: a warning is not a failure (store already counts one as stored): exit 0.
    with ScriptedServer(_answer_with(0xB000, "odd but done")) as server:
        code, output, _ = _echo(server.port)
    assert code == 0, output
    assert "netdicom: warning: C-ECHO answered with status 0xB000" in output
    assert "odd but done" in output and "error" not in output


def test_a_release_instead_of_the_answer_is_said_in_those_words() -> None:
    # It said only "association released by peer": what was left unanswered?
    def script(peer: RawPeer) -> None:
        accept_echo(peer)
        peer.read_pdu()  # the C-ECHO-RQ, never answered
        peer.send_pdu(ReleaseRQ())
        assert isinstance(peer.read_pdu(), ReleaseRP)

    with ScriptedServer(script) as server:
        code, output, _ = _echo(server.port)
    assert code == 6, output
    assert "released the association (A-RELEASE-RQ) before answering what we had sent" in output
    assert server.errors == []


def test_an_answer_cut_short_is_not_called_silence() -> None:
    # 40 bytes of an A-ASSOCIATE-AC, then FIN: it said "closed the connection without
    # answering the A-ASSOCIATE-RQ; if the peer requires TLS, add --tls".
    from netdicom.core import uids
    from netdicom.core.pdu import (
        ContextResult,
        PresentationContextAC,
        UserInformation,
        encode_pdu,
    )

    def script(peer: RawPeer) -> None:
        rq = peer.read_pdu()
        assert isinstance(rq, AssociateRQ)
        contexts = tuple(
            PresentationContextAC(pc.context_id, ContextResult.ACCEPTANCE, uids.IMPLICIT_VR_LE)
            for pc in rq.presentation_contexts
        )
        ac = AssociateAC(rq.called_ae_title, rq.calling_ae_title, contexts,
                         UserInformation(max_length=16384))  # fmt: skip
        peer.send(encode_pdu(ac)[:40])

    with ScriptedServer(script) as server:
        code, output, _ = _echo(server.port)
    assert code == 6, output
    assert "closed the connection in the middle of a PDU (40 bytes of it came)" in output
    assert "--tls" not in output
