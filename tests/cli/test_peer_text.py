"""Text a peer chooses never reaches the terminal raw, and our messages about what a peer
did say it once, in DIMSE words: the real `netdicom` command against scripted peers on
127.0.0.1 (a newline or an escape sequence in an Error Comment, a version name, a match).

The renderers that print peer text are tested one by one in test_printable.py."""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

from netdicom.core import uids
from netdicom.core.dimse import CEchoRSP, CFindRSP, CStoreRQ, CStoreRSP, decode_command
from netdicom.core.dimse import encode_command as command
from netdicom.core.pdu import (
    AbortPDU,
    AssociateAC,
    AssociateRQ,
    ContextResult,
    PDataTF,
    PresentationContextAC,
    ReleaseRQ,
    UserInformation,
)
from tests.dicomfiles import make_files
from tests.hardening.raw import RawPeer, ScriptedServer, accept_echo, pdata
from tests.peers import run_cli

# A newline (forges a line), SGR colour, OSC set-window-title ended by BEL.
EVIL = "line1\nline2 \x1b[31mRED\x1b[0m \x1b]0;pwned-title\x07 end"
EVIL_SHOWN = "line1\\nline2 \\x1b[31mRED\\x1b[0m \\x1b]0;pwned-title\\x07 end"


def _cli(port: int, *args: str) -> tuple[int, str, str]:
    command_name, *rest = args
    result = run_cli(command_name, f"127.0.0.1:{port}", *rest, "--timeout", "5", timeout=60)
    return result.returncode, result.stdout, result.stderr


def _assert_nothing_raw(*texts: str) -> None:
    for text in texts:
        assert "\x1b" not in text and "\x07" not in text, text
        assert "\nline2" not in text, text


def _read_request(peer: RawPeer) -> tuple[int, int]:
    """Context ID and Message ID of the next request, its data set (if any) read too."""
    pdu = peer.read_pdu()
    assert isinstance(pdu, PDataTF), pdu
    pdv = pdu.pdvs[0]
    assert pdv.is_command and pdv.is_last
    request = decode_command(bytes(pdv.data))
    message_id = getattr(request, "message_id", None)
    assert isinstance(message_id, int), request
    if request.has_dataset:
        while True:
            more = peer.read_pdu()
            assert isinstance(more, PDataTF), more
            if any(not p.is_command and p.is_last for p in more.pdvs):
                break
    return pdv.context_id, message_id


def _release(peer: RawPeer) -> None:
    from netdicom.core.pdu import ReleaseRP

    pdu = peer.read_pdu()
    assert isinstance(pdu, ReleaseRQ | AbortPDU), pdu
    if isinstance(pdu, ReleaseRQ):
        peer.send_pdu(ReleaseRP())
    peer.wait_closed(10)


Answer = Callable[[int, int], bytes]  # (context ID, message ID) -> the bytes to send back


def _answer_first(answer: Answer) -> Callable[[RawPeer], None]:
    """A script: accept, answer the first request with `answer`, then release."""

    def script(peer: RawPeer) -> None:
        accept_echo(peer)
        peer.send(answer(*_read_request(peer)))
        _release(peer)

    return script


def _find_failure(context_id: int, message_id: int) -> bytes:
    return pdata(context_id, command(CFindRSP(message_id, 0xC000, error_comment=EVIL)))


# --- F2: the peer's text on stderr and stdout --------------------------------------------------


def test_find_failure_comment_is_one_escaped_line() -> None:
    with ScriptedServer(_answer_first(_find_failure)) as server:
        code, out, err = _cli(server.port, "find", "PatientName=*")
    assert code == 1, err
    _assert_nothing_raw(out, err)
    assert err.splitlines() == [
        f"netdicom: error: C-FIND failed: Failed: unable to process (0xC000): {EVIL_SHOWN}"
    ]
    assert not server.errors, server.errors


def test_debug_traceback_escapes_the_comment_too() -> None:
    with ScriptedServer(_answer_first(_find_failure)) as server:
        code, _, err = _cli(server.port, "find", "PatientName=*", "--debug")
    assert code == 1, err
    assert "Traceback" in err and EVIL_SHOWN in err
    assert "\x1b" not in err and "\x07" not in err


def test_store_failure_reason_is_escaped(tmp_path: Path) -> None:
    files = make_files(tmp_path, 1)

    def fail(context_id: int, message_id: int) -> bytes:
        return pdata(context_id, command(CStoreRSP(message_id, 0xC000, error_comment=EVIL)))

    with ScriptedServer(_answer_first(fail)) as server:
        code, out, err = _cli(server.port, "store", str(files[0]), "--no-progress")
    assert code == 1, out + err
    _assert_nothing_raw(out, err)
    failed = [line for line in out.splitlines() if line.startswith(f"  {files[0]}")]
    assert len(failed) == 1 and failed[0].endswith(EVIL_SHOWN), out


def _accept_with_identity(class_uid: str, version_name: str | None) -> Callable[[RawPeer], None]:
    def script(peer: RawPeer) -> None:
        rq = peer.read_pdu()
        assert isinstance(rq, AssociateRQ), rq
        contexts = tuple(
            PresentationContextAC(pc.context_id, ContextResult.ACCEPTANCE, uids.IMPLICIT_VR_LE)
            for pc in rq.presentation_contexts
        )
        info = UserInformation(
            max_length=16384,
            implementation_class_uid=class_uid,
            implementation_version_name=version_name,
        )
        peer.send_pdu(AssociateAC(rq.called_ae_title, rq.calling_ae_title, contexts, info))
        context_id, message_id = _read_request(peer)
        peer.send(pdata(context_id, command(CEchoRSP(message_id, 0))))
        _release(peer)

    return script


def test_echo_verbose_escapes_the_peer_implementation() -> None:
    script = _accept_with_identity("\x1b[31m1.2\n3", "\x1b]0;t\x07[/]X")
    with ScriptedServer(script) as server:
        code, _, err = _cli(server.port, "echo", "-v")
    assert code == 0, err
    assert "\x1b" not in err and "\x07" not in err, err
    # Rich wraps the line to its width: join it back to find the escaped values.
    joined = "".join(err.split())
    assert "\\x1b[31m1.2\\n3" in joined and "\\x1b]0;t\\x07[/]X" in joined, err


# --- F9: the wording of what the peer did ------------------------------------------------------


def _unknown_command(context_id: int, message_id: int) -> bytes:
    # A response-shaped command set with Command Field 0x7777, which PS3.7 does not define:
    # Command Field, Message ID Being Responded To, Command Data Set Type, Status.
    def us(element: int, value: int) -> bytes:
        return struct.pack("<HHIH", 0x0000, element, 2, value)

    body = us(0x0100, 0x7777) + us(0x0120, message_id) + us(0x0800, 0x0101) + us(0x0900, 0x0000)
    group_length = struct.pack("<HHII", 0x0000, 0x0000, 4, len(body))
    return pdata(context_id, group_length + body)


def _store_request(context_id: int, message_id: int) -> bytes:
    rq = CStoreRQ(9, uids.VERIFICATION, "1.2.3.9", has_dataset=False)
    return pdata(context_id, command(rq))


def _store_response(context_id: int, message_id: int) -> bytes:
    return pdata(context_id, command(CStoreRSP(message_id, 0)))


def _status_ffff(context_id: int, message_id: int) -> bytes:
    return pdata(context_id, command(CEchoRSP(message_id, 0xFFFF)))


def test_echo_names_an_unknown_command_by_its_field() -> None:
    with ScriptedServer(_answer_first(_unknown_command)) as server:
        code, _, err = _cli(server.port, "echo")
    assert code == 6, err
    assert err.splitlines()[0] == (
        "netdicom: error: expected a response to message 1, got a command we do not know "
        "(command field 0x7777)"
    )


def test_echo_names_a_request_instead_of_a_response() -> None:
    with ScriptedServer(_answer_first(_store_request)) as server:
        code, _, err = _cli(server.port, "echo")
    assert code == 6, err
    assert "expected a response to message 1, got a C-STORE-RQ" in err
    assert "None" not in err


def test_echo_names_the_wrong_response_in_dimse_words() -> None:
    with ScriptedServer(_answer_first(_store_response)) as server:
        code, _, err = _cli(server.port, "echo")
    assert code == 6, err
    assert "expected a C-ECHO-RSP, got a C-STORE-RSP" in err
    assert "CStoreRSP" not in err


def test_an_unknown_status_code_is_shown_once() -> None:
    with ScriptedServer(_answer_first(_status_ffff)) as server:
        code, out, err = _cli(server.port, "echo")
    assert code == 1, err
    assert "Unknown status (0xFFFF) in" in out
    assert "netdicom: error: C-ECHO failed with status 0xFFFF (Unknown status)" in err
    for line in (out + err).splitlines():
        assert line.count("0xFFFF") == 1, line


def test_an_abort_of_undefined_source_says_so_once() -> None:
    def abort(peer: RawPeer) -> None:
        peer.read_pdu()
        peer.send_pdu(AbortPDU(255, 255))

    with ScriptedServer(abort) as server:
        code, _, err = _cli(server.port, "echo")
    assert code == 6, err
    line = err.splitlines()[0]
    assert "source 255" in line and "(aborted)" not in line, line
    assert line.count("aborted") == 1, line


def test_an_empty_transfer_syntax_is_named() -> None:
    def empty(peer: RawPeer) -> None:
        rq = peer.read_pdu()
        assert isinstance(rq, AssociateRQ), rq
        contexts = (PresentationContextAC(1, ContextResult.ACCEPTANCE, ""),)
        info = UserInformation(max_length=16384)
        peer.send_pdu(AssociateAC(rq.called_ae_title, rq.calling_ae_title, contexts, info))
        peer.wait_closed(10)

    with ScriptedServer(empty) as server:
        code, _, err = _cli(server.port, "echo")
    assert code == 6, err
    assert "with an empty transfer syntax UID, which was not proposed" in err
    assert "syntax ," not in err


def test_serve_log_escapes_the_calling_ae_title(tmp_path: Path) -> None:
    # A title with control characters is refused (PS3.5, AE VR); the line that logs the
    # rejection shows it escaped.
    from netdicom.core.pdu import AssociateRJ
    from tests.hardening.raw import echo_rq
    from tests.peers import free_port, running, serve_argv

    port = free_port()
    with running(serve_argv(tmp_path, port), port) as proc:
        with RawPeer(port) as peer:
            answer = peer.associate(echo_rq(calling_ae_title="EV\x1b[31mIL\nX"))
            assert isinstance(answer, AssociateRJ) and answer.reason == 3, answer
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    log = out.decode()
    assert "\x1b" not in log
    assert "EV\\x1b[31mIL\\nX -> NETDICOM: calling AE title holds a control character" in log
