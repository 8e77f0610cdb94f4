"""Hostile, broken and silent peers against a `netdicom serve` process, over raw sockets.

Every case asserts the exact answer PS3.8 Table 9-10 gives (the A-ABORT source/reason, the
A-ASSOCIATE-RJ result/source/reason, or the close), how long it took, and that a C-ECHO
straight after still succeeds: serve keeps serving whatever a peer sends.
"""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset

from netdicom.core import uids
from netdicom.core.acse import ProposedContext
from netdicom.core.dimse import CFindRQ, CStoreRQ, CStoreRSP, decode_command, encode_command
from netdicom.core.pdu import (
    AbortPDU,
    AssociateAC,
    AssociateRJ,
    ContextResult,
    PDataTF,
    PresentationContextAC,
    ReleaseRP,
    ReleaseRQ,
    UserInformation,
    encode_pdu,
)
from tests.dicomfiles import CT, make_dataset
from tests.hardening.raw import (
    Closed,
    RawPeer,
    abort_of,
    echo_command,
    echo_rq,
    echo_works,
    pdata,
)
from tests.peers import free_port, running, serve_argv

ARTIM = 2.0  # --acse-timeout given to serve
IDLE = 2.0  # --idle-timeout
PROMPT = 1.0  # an answer that needs no timer comes within this
SLACK = 1.5  # a timer fires within this after it is due


@pytest.fixture(scope="module")
def serve_proc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    port = free_port()
    argv = serve_argv(
        tmp_path_factory.mktemp("serve"),
        port,
        "--acse-timeout",
        str(ARTIM),
        "--idle-timeout",
        str(IDLE),
        "-q",
    )
    with running(argv, port) as proc:
        yield port, proc.pid
        assert proc.poll() is None, "serve died"
        proc.terminate()
        out, _ = proc.communicate(timeout=15)
    text = out.decode(errors="replace")
    # Nothing a peer sent may surface as an internal error.
    assert "Traceback" not in text and "internal error" not in text, text


@pytest.fixture
def serve(serve_proc: tuple[int, int]) -> int:
    return serve_proc[0]


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _rq_bytes(**changes: object) -> bytes:
    return encode_pdu(echo_rq(**changes))


def _first_answer(port: int, data: bytes, timeout: float = PROMPT) -> tuple[object, float]:
    start = time.monotonic()
    with RawPeer(port) as peer:
        peer.send(data)
        try:
            answer: object = peer.read_pdu(timeout)
        except Closed:
            answer = "closed"
    return answer, time.monotonic() - start


def _with_calling(title: bytes) -> bytes:
    # Calling AE title: bytes 27-42 of the A-ASSOCIATE-RQ (PS3.8 Table 9-11), 16 bytes padded.
    data = _rq_bytes()
    return data[:26] + title.ljust(16) + data[42:]


def _with_called(title: bytes) -> bytes:
    data = _rq_bytes()
    return data[:10] + title.ljust(16) + data[26:]


def _overrun_subitem() -> bytes:
    # The abstract syntax sub-item (0x30) declares 0xFF bytes, more than its context item holds.
    data = _rq_bytes()
    at = data.index(b"\x30\x00")
    return data[: at + 2] + b"\x00\xff" + data[at + 4 :]


_AC = encode_pdu(
    AssociateAC(
        "NETDICOM",
        "RAWPEER",
        (PresentationContextAC(1, ContextResult.ACCEPTANCE, uids.IMPLICIT_VR_LE),),
        UserInformation(max_length=16384),
    )
)

# (bytes sent as the first thing on a new connection, expected A-ABORT source and reason).
# Every one is Evt19 or an unexpected PDU in Sta2: AA-1, A-ABORT then Sta13 (PS3.8 Table 9-10);
# the source is the service provider (2), see core/ul/actions.py aa_1 for why.
HOSTILE_FIRST = {
    "http-request": (b"GET / HTTP/1.1\r\nHost: pacs\r\n\r\n", (2, 1)),
    "tls-client-hello": (bytes.fromhex("160301020001"), (2, 1)),
    "random-bytes": (bytes(range(0x80, 0xC0)), (2, 1)),
    "unknown-pdu-type": (b"\x08\x00\x00\x00\x00\x04abcd", (2, 1)),
    # Only the header is sent: the answer cannot have waited for (or allocated) the 4 GiB body.
    "associate-rq-length-ffffffff": (b"\x01\x00\xff\xff\xff\xff", (2, 6)),
    "p-data-length-ffffffff": (b"\x04\x00\xff\xff\xff\xff", (2, 6)),
    "p-data-before-association": (echo_command(1), (2, 2)),
    "release-rq-before-association": (encode_pdu(ReleaseRQ()), (2, 2)),
    "release-rp-before-association": (encode_pdu(ReleaseRP()), (2, 2)),
    "associate-ac-sent-to-acceptor": (_AC, (2, 2)),
    "associate-rj-sent-to-acceptor": (encode_pdu(AssociateRJ(1, 1, 1)), (2, 2)),
    "abort-declared-length-2": (b"\x07\x00\x00\x00\x00\x02\x00\x00", (2, 6)),
    "associate-rq-subitem-overruns-item": (_overrun_subitem(), (2, 6)),
    "associate-rq-truncated-fixed-part": (b"\x01\x00\x00\x00\x00\x0a" + bytes(10), (2, 6)),
}


@pytest.mark.parametrize("name", list(HOSTILE_FIRST))
def test_hostile_first_bytes_get_the_table_answer(serve: int, name: str) -> None:
    data, expected = HOSTILE_FIRST[name]
    answer, seconds = _first_answer(serve, data)
    assert isinstance(answer, AbortPDU), answer
    assert abort_of(answer) == expected
    assert seconds < PROMPT
    assert echo_works(serve) < PROMPT


def test_after_abort_serve_closes_at_artim(serve: int) -> None:
    # AA-1 leaves serve in Sta13 with ARTIM running: if we never close, serve does.
    with RawPeer(serve) as peer:
        peer.send(b"GET / HTTP/1.1\r\n\r\n")
        assert abort_of(peer.read_pdu(PROMPT)) == (2, 1)
        # Garbage after the abort is read and dropped, not answered with more A-ABORTs.
        peer.send(os.urandom(4096))
        started = time.monotonic()
        with pytest.raises(Closed):
            peer.read_pdu(ARTIM + SLACK)
        assert ARTIM - 0.5 < time.monotonic() - started < ARTIM + SLACK
    assert echo_works(serve) < PROMPT


def test_huge_declared_length_is_refused_before_the_body(serve_proc: tuple[int, int]) -> None:
    # The header declares a 4 GiB P-DATA-TF; 64 MiB of "body" follow anyway. The abort comes
    # after the header alone, the bytes after it are dropped as they arrive (serve's memory
    # does not grow with them) and they do not postpone the close at ARTIM.
    serve, pid = serve_proc
    rss_before = _rss_kib(pid)
    with RawPeer(serve) as peer:
        peer.send(b"\x04\x00\xff\xff\xff\xff")
        assert abort_of(peer.read_pdu(PROMPT)) == (2, 6)
        aborted = time.monotonic()
        chunk = bytes(1 << 20)
        for _ in range(64):
            peer.sock.sendall(chunk)
        assert _rss_kib(pid) - rss_before < 10 * 1024
        peer.wait_closed(ARTIM + SLACK)
        assert time.monotonic() - aborted < ARTIM + SLACK
    assert echo_works(serve) < PROMPT


# --- A-ASSOCIATE-RQ checks -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        # PS3.8 Table 9-21: rejected-permanent, service user, application context not supported.
        (_rq_bytes(application_context_name="1.2.3.4.5"), (1, 1, 2)),
        # Bit 0 clear: protocol version not supported (service provider, ACSE).
        (_rq_bytes(protocol_version=2), (1, 2, 2)),
        # An all-space or empty title is "no name": we answer the reason naming that title.
        (_with_calling(b""), (1, 1, 3)),
        (_with_calling(b"\x00" * 16), (1, 1, 3)),
        (_with_called(b""), (1, 1, 7)),
        # Control characters (PS3.5, AE VR): a newline would forge a log line, ESC would
        # reach the operator's terminal; a backslash is a value separator.
        (_with_calling(b"\nFORGED LINE"), (1, 1, 3)),
        (_with_calling(b"\x1b[31mRED"), (1, 1, 3)),
        (_with_called(b"A\\B"), (1, 1, 7)),
        # A leading NUL is a control character too, not padding to strip ("\0FUZZ" is not
        # "FUZZ"); trailing NULs are padding (the test above and the next one).
        (_with_calling(b"\x00FUZZ"), (1, 1, 3)),
    ],
    ids=[
        "unknown-application-context",
        "version-2",
        "blank-calling",
        "nul-calling",
        "blank-called",
        "newline-calling",
        "escape-calling",
        "backslash-called",
        "leading-nul-calling",
    ],
)
def test_associate_rq_rejections(serve: int, data: bytes, expected: tuple[int, int, int]) -> None:
    answer, seconds = _first_answer(serve, data)
    assert isinstance(answer, AssociateRJ), answer
    assert (answer.result, answer.source, answer.reason) == expected
    assert seconds < PROMPT
    assert echo_works(serve) < PROMPT


def test_protocol_version_3_is_accepted(serve: int) -> None:
    # PS3.8 §9.3.2: only bit 0 is tested.
    with RawPeer(serve) as peer:
        ac = peer.associate(echo_rq(protocol_version=3), timeout=PROMPT)
        assert isinstance(ac, AssociateAC)
        assert peer.echo(1, timeout=PROMPT) == 0
        assert isinstance(peer.release(PROMPT), ReleaseRP)


def test_each_context_gets_its_own_answer(serve: int) -> None:
    contexts = (
        ProposedContext(uids.VERIFICATION, ("1.2.3.999",)),  # no transfer syntax we know
        # Storage Commitment Push: a standard SOP class serve does not offer (an unknown
        # private UID would be accepted as private storage).
        ProposedContext("1.2.840.10008.1.20.1", (uids.IMPLICIT_VR_LE,)),
        ProposedContext(uids.VERIFICATION, (uids.IMPLICIT_VR_LE,)),
    )
    with RawPeer(serve) as peer:
        ac = peer.associate(echo_rq(contexts=contexts), timeout=PROMPT)
        assert isinstance(ac, AssociateAC), ac
        results = {pc.context_id: pc.result for pc in ac.presentation_contexts}
        assert results == {
            1: ContextResult.TRANSFER_SYNTAXES_NOT_SUPPORTED,
            3: ContextResult.ABSTRACT_SYNTAX_NOT_SUPPORTED,
            5: ContextResult.ACCEPTANCE,
        }
        assert peer.echo(1, context_id=5, timeout=PROMPT) == 0
        assert isinstance(peer.release(PROMPT), ReleaseRP)


# --- silent peers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "prefix",
    [b"", b"\x01\x00\x00", _rq_bytes()[:40]],
    ids=["nothing", "half-a-header", "half-an-associate-rq"],
)
def test_silent_before_association_is_closed_at_artim(serve: int, prefix: bytes) -> None:
    with RawPeer(serve) as peer:
        peer.send(prefix)
        # Evt18 in Sta2: AA-2, the connection is closed with no PDU.
        seconds = peer.wait_closed(ARTIM + SLACK)
    assert ARTIM - 0.5 < seconds < ARTIM + SLACK
    assert echo_works(serve) < PROMPT


@pytest.mark.parametrize("prefix", [b"", echo_command(1)[:9]], ids=["quiet", "stopped-mid-pdu"])
def test_quiet_association_is_aborted_after_idle(serve: int, prefix: bytes) -> None:
    with RawPeer(serve) as peer:
        assert isinstance(peer.associate(timeout=PROMPT), AssociateAC)
        started = time.monotonic()
        peer.send(prefix)
        assert abort_of(peer.read_pdu(IDLE + SLACK)) == (2, 0)
        assert IDLE - 0.5 < time.monotonic() - started < IDLE + SLACK
        # And the connection is closed right after the A-ABORT.
        assert peer.wait_closed(PROMPT) < PROMPT
    assert echo_works(serve) < PROMPT


def test_a_pdu_trickled_byte_by_byte_between_messages_is_aborted_at_idle(serve: int) -> None:
    # Every byte used to count as activity: a peer sending one byte of a PDU every half
    # second held its association past --idle-timeout for as long as it liked. Only whole
    # PDUs count now (within a message, the DIMSE rule of 64 KiB applies instead).
    command = echo_command(1)
    with RawPeer(serve) as peer:
        assert isinstance(peer.associate(timeout=PROMPT), AssociateAC)
        started = time.monotonic()
        answer = None
        for byte in command[:-1]:
            peer.send(bytes([byte]))
            try:
                answer = peer.read_pdu(0.5)
                break
            except TimeoutError:
                continue
        assert answer is not None, "still open after the whole PDU but one byte"
        assert abort_of(answer) == (2, 0)
        assert IDLE - 0.5 < time.monotonic() - started < IDLE + SLACK
    assert echo_works(serve) < PROMPT


# --- A-ABORT and close in each state a socket can reach ----------------------------------------


def test_abort_before_association_closes_at_once(serve: int) -> None:
    # Evt16 in Sta2: AA-2, close without answering.
    with RawPeer(serve) as peer:
        peer.send_pdu(AbortPDU(0, 0))
        assert peer.wait_closed(PROMPT) < PROMPT
    assert echo_works(serve) < PROMPT


def test_abort_established_closes_at_once(serve: int) -> None:
    # Evt16 in Sta6: AA-3, close.
    with RawPeer(serve) as peer:
        assert isinstance(peer.associate(timeout=PROMPT), AssociateAC)
        peer.send_pdu(AbortPDU(0, 0))
        assert peer.wait_closed(PROMPT) < PROMPT
    assert echo_works(serve) < PROMPT


def test_abort_after_rejection_closes_at_once(serve: int) -> None:
    # Evt16 in Sta13 (after our A-ASSOCIATE-RJ): AA-2, close.
    with RawPeer(serve) as peer:
        peer.send(_rq_bytes(application_context_name="1.2.3"))
        assert isinstance(peer.read_pdu(PROMPT), AssociateRJ)
        peer.send_pdu(AbortPDU(0, 0))
        assert peer.wait_closed(PROMPT) < PROMPT


def test_rejected_peer_that_stays_is_closed_at_artim(serve: int) -> None:
    # AE-8 starts ARTIM in Sta13: a peer that neither closes nor aborts is cut off.
    with RawPeer(serve) as peer:
        peer.send(_rq_bytes(application_context_name="1.2.3"))
        assert isinstance(peer.read_pdu(PROMPT), AssociateRJ)
        seconds = peer.wait_closed(ARTIM + SLACK)
        assert ARTIM - 0.5 < seconds < ARTIM + SLACK


def test_released_peer_that_stays_is_closed_at_artim(serve: int) -> None:
    # AR-4: after the A-RELEASE-RP serve waits for the close in Sta13, at most ARTIM.
    with RawPeer(serve) as peer:
        assert isinstance(peer.associate(timeout=PROMPT), AssociateAC)
        assert isinstance(peer.release(PROMPT), ReleaseRP)
        # A PDU in Sta13 is ignored (AA-6); the close still comes at ARTIM.
        peer.send(echo_command(2))
        seconds = peer.wait_closed(ARTIM + SLACK)
        assert ARTIM - 0.5 < seconds < ARTIM + SLACK


def test_peer_that_stays_after_our_abort_is_read_then_closed_at_artim(serve: int) -> None:
    # AA-1: after a DIMSE-level error serve sends A-ABORT and waits in Sta13 for the close,
    # ARTIM at most, reading and dropping what still comes (AA-6). It used to close at once,
    # so a peer still sending met a TCP reset before it could read the A-ABORT.
    find = (ProposedContext(uids.STUDY_ROOT_FIND, (uids.IMPLICIT_VR_LE,)),)
    with RawPeer(serve) as peer:
        assert isinstance(peer.associate(echo_rq(contexts=find), timeout=PROMPT), AssociateAC)
        peer.send(pdata(1, encode_command(CFindRQ(1, uids.STUDY_ROOT_FIND))))
        peer.send(echo_command(2))  # a command where the identifier belongs
        assert abort_of(peer.read_pdu(PROMPT)) == (2, 6)  # invalid PDU parameter value
        started = time.monotonic()
        for message_id in range(3, 40):
            peer.send(echo_command(message_id))  # no reset: read and dropped
        peer.wait_closed(ARTIM + SLACK)
        seconds = time.monotonic() - started
        assert ARTIM - 0.5 < seconds < ARTIM + SLACK
    assert echo_works(serve) < PROMPT


@pytest.mark.parametrize(
    "then",
    [b"", echo_command(1)[:20], encode_pdu(ReleaseRQ())[:7]],
    ids=["after-association", "mid-p-data", "mid-release-rq"],
)
def test_peer_closing_in_the_middle_leaves_serve_serving(serve: int, then: bytes) -> None:
    with RawPeer(serve) as peer:
        assert isinstance(peer.associate(timeout=PROMPT), AssociateAC)
        peer.send(then)
        peer.sock.shutdown(socket.SHUT_WR)
        # Evt17 in Sta6: AA-4, nothing to send; serve closes its side at once.
        assert peer.wait_closed(PROMPT) < PROMPT
    assert echo_works(serve) < PROMPT


def test_reset_connection_leaves_serve_serving(serve: int) -> None:
    peer = RawPeer(serve)
    assert isinstance(peer.associate(timeout=PROMPT), AssociateAC)
    peer.send(echo_command(1)[:20])
    # SO_LINGER 0: close() sends RST instead of FIN.
    peer.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    peer.close()
    assert echo_works(serve) < PROMPT


def test_unexpected_pdus_on_an_association(serve: int) -> None:
    # A second A-ASSOCIATE-RQ in Sta6: AA-8, A-ABORT (2, unexpected PDU).
    with RawPeer(serve) as peer:
        assert isinstance(peer.associate(timeout=PROMPT), AssociateAC)
        peer.send(_rq_bytes())
        assert abort_of(peer.read_pdu(PROMPT)) == (2, 2)
    # A P-DATA-TF on a context that was not accepted: A-ABORT (2, invalid parameter).
    with RawPeer(serve) as peer:
        assert isinstance(peer.associate(timeout=PROMPT), AssociateAC)
        peer.send(echo_command(1, context_id=9))
        source, _ = abort_of(peer.read_pdu(PROMPT))
        assert source == 2
    # A data-set fragment with no command before it is a protocol error too.
    with RawPeer(serve) as peer:
        assert isinstance(peer.associate(timeout=PROMPT), AssociateAC)
        peer.send(pdata(1, b"\x08\x00\x00\x00", command=False))
        source, _ = abort_of(peer.read_pdu(PROMPT))
        assert source == 2
    assert echo_works(serve) < PROMPT


# --- leniency ----------------------------------------------------------------------------------


def test_back_to_back_echoes_then_release_are_answered_in_order(serve: int) -> None:
    # Beyond the default window of 1 (PS3.7 D.3.3.3): 20 C-ECHO-RQs and the A-RELEASE-RQ
    # in one write, without waiting for any answer.
    ids = list(range(1, 21))
    with RawPeer(serve) as peer:
        assert isinstance(peer.associate(timeout=PROMPT), AssociateAC)
        started = time.monotonic()
        peer.send(b"".join(echo_command(i) for i in ids) + encode_pdu(ReleaseRQ()))
        statuses = [peer.read_echo_status(i, PROMPT) for i in ids]  # asserts the order
        assert statuses == [0] * len(ids)
        assert isinstance(peer.read_pdu(PROMPT), ReleaseRP)
        assert time.monotonic() - started < PROMPT


# --- limits and floods -------------------------------------------------------------------------


def test_max_associations_rejects_beyond_the_limit(tmp_path: Path) -> None:
    port = free_port()
    with running(serve_argv(tmp_path, port, "--max-associations", "2", "-q"), port) as proc:
        first, second = RawPeer(port), RawPeer(port)
        try:
            assert isinstance(first.associate(timeout=PROMPT), AssociateAC)
            assert isinstance(second.associate(timeout=PROMPT), AssociateAC)
            answer, seconds = _first_answer(port, _rq_bytes())
            # PS3.8 Table 9-21: rejected-transient, presentation provider, local limit exceeded.
            assert isinstance(answer, AssociateRJ), answer
            assert (answer.result, answer.source, answer.reason) == (2, 3, 2)
            assert seconds < PROMPT
            # Once one is released there is room again.
            assert isinstance(first.release(PROMPT), ReleaseRP)
            first.close()
            deadline = time.monotonic() + 5
            while True:
                answer, _ = _first_answer(port, _rq_bytes())
                if isinstance(answer, AssociateAC) or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            assert isinstance(answer, AssociateAC), answer
            assert second.echo(3, timeout=PROMPT) == 0
        finally:
            first.close()
            second.close()
        proc.terminate()
        log, _ = proc.communicate(timeout=20)
    # A warning in words, seen with -q too (it was an info line, "rejected (2, 3, 2)").
    assert "2 associations already open (--max-associations)" in log.decode(), log


@pytest.mark.parametrize("option", [[], ["--max-associations", "0"]], ids=["default", "none"])
def test_associations_are_limited_by_default(tmp_path: Path, option: list[str]) -> None:
    # Each association may hold a few MiB: 32 at once unless told otherwise (0: no limit).
    port = free_port()
    with running(serve_argv(tmp_path, port, *option, "-q"), port):
        peers = [RawPeer(port) for _ in range(32)]
        try:
            for peer in peers:
                assert isinstance(peer.associate(timeout=PROMPT), AssociateAC)
            answer, _ = _first_answer(port, _rq_bytes())
            if option:
                assert isinstance(answer, AssociateAC), answer
            else:
                assert isinstance(answer, AssociateRJ), answer
                assert (answer.result, answer.source, answer.reason) == (2, 3, 2)
            assert peers[0].echo(1, timeout=PROMPT) == 0
        finally:
            for peer in peers:
                peer.close()


def test_flood_of_idle_connections(serve: int) -> None:
    count = 200
    started = time.monotonic()
    socks = [socket.create_connection(("127.0.0.1", serve), timeout=5) for _ in range(count)]
    try:
        # 200 connections sit in Sta2; a real association is served all the same.
        assert echo_works(serve) < PROMPT
        # Each one is closed when its ARTIM expires (AA-2), none earlier than ARTIM.
        closed_at: list[float] = []
        for sock in socks:
            sock.settimeout(max(0.1, started + ARTIM + 3.0 - time.monotonic()))
            assert sock.recv(1) == b""
            closed_at.append(time.monotonic() - started)
        assert min(closed_at) > ARTIM - 0.5
        assert max(closed_at) < ARTIM + 3.0
    finally:
        for sock in socks:
            sock.close()
    assert echo_works(serve) < PROMPT


def test_serve_survived(serve: int) -> None:
    # Runs last in this module: one more association after all of the above.
    assert echo_works(serve) < PROMPT
    result = subprocess.run(
        ["ss", "-tan", f"sport = :{serve}"], capture_output=True, text=True, check=False
    )
    if result.returncode == 0:
        # No connection of ours is left open on the serve side (only the listener).
        established = [line for line in result.stdout.splitlines() if "ESTAB" in line]
        assert len(established) <= 2, result.stdout


# --- slow and stalled senders mid-message (--dimse-timeout) -------------------------------------

DIMSE = 1.0  # --dimse-timeout given to the serve below


@pytest.fixture(scope="module")
def dimse_serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    port = free_port()
    argv = serve_argv(tmp_path_factory.mktemp("dimse"), port, "--dimse-timeout", str(DIMSE))
    with running(argv, port) as proc:
        yield port
        proc.terminate()
        out, _ = proc.communicate(timeout=15)
    text = out.decode(errors="replace")
    assert "Traceback" not in text and "internal error" not in text, text


def _store_rq(dataset: Dataset) -> bytes:
    return pdata(1, encode_command(CStoreRQ(1, CT, dataset.SOPInstanceUID)))


def _implicit_le(dataset: Dataset) -> bytes:
    buffer = DicomBytesIO()
    buffer.is_implicit_VR = buffer.is_little_endian = True
    write_dataset(buffer, dataset)
    return buffer.getvalue()


def _associated(port: int, abstract_syntax: str) -> RawPeer:
    peer = RawPeer(port)
    contexts = (ProposedContext(abstract_syntax, (uids.IMPLICIT_VR_LE,)),)
    assert isinstance(peer.associate(echo_rq(contexts=contexts), timeout=PROMPT), AssociateAC)
    return peer


def _drip(peer: RawPeer, data: bytes, piece: int, every: float, seconds: float) -> float:
    """Send `data` in fragments of `piece` bytes, one every `every` s, until serve aborts
    (the seconds it took) or `seconds` pass (TimeoutError)."""
    started = time.monotonic()
    for at in range(0, len(data) - piece, piece):
        if time.monotonic() - started > seconds:
            raise TimeoutError(f"still receiving after {seconds} s")
        try:
            peer.send(pdata(1, data[at : at + piece], command=False, last=False))
            answer = peer.read_pdu(every)
        except TimeoutError:
            continue
        except (Closed, OSError):
            return time.monotonic() - started
        assert abort_of(answer) == (2, 0), answer
        return time.monotonic() - started
    raise AssertionError("the whole data set went out")


@pytest.mark.parametrize(
    ("abstract_syntax", "first"),
    [(CT, "store"), (uids.STUDY_ROOT_FIND, "find")],
)
def test_slow_drip_mid_message_is_aborted(
    dimse_serve: int, abstract_syntax: str, first: str
) -> None:
    # A fragment every 0.3 s used to restart the DIMSE timer each time: such a peer held its
    # association (and one of --max-associations) as long as it liked. Now it must send 64 KiB
    # (DIMSE_MIN_PROGRESS) per DIMSE timeout, and is aborted at the timeout.
    dataset = make_dataset(rows=512, columns=512)
    data = _implicit_le(dataset)
    command = (
        _store_rq(dataset)
        if first == "store"
        else pdata(1, encode_command(CFindRQ(1, uids.STUDY_ROOT_FIND)))
    )
    with _associated(dimse_serve, abstract_syntax) as peer:
        peer.send(command)
        seconds = _drip(peer, data, 64, 0.3, DIMSE + 4 * SLACK)
    assert DIMSE - 0.5 < seconds < DIMSE + SLACK
    assert echo_works(dimse_serve) < PROMPT


def test_stall_mid_data_set_is_aborted_at_the_dimse_timeout(dimse_serve: int) -> None:
    dataset = make_dataset(rows=512, columns=512)
    with _associated(dimse_serve, CT) as peer:
        peer.send(_store_rq(dataset))
        peer.send(pdata(1, _implicit_le(dataset)[:200_000], command=False, last=False))
        started = time.monotonic()
        assert abort_of(peer.read_pdu(DIMSE + SLACK)) == (2, 0)
        assert DIMSE - 0.5 < time.monotonic() - started < DIMSE + SLACK


def test_slow_but_steady_sender_is_not_aborted(dimse_serve: int) -> None:
    # 64 KiB (DIMSE_MIN_PROGRESS) every 0.6 s, within the 1 s DIMSE timeout: the minimum rate
    # is kept, so the store completes however long it takes in all.
    dataset = make_dataset(rows=512, columns=512)
    data = _implicit_le(dataset)
    piece = 64 << 10
    with _associated(dimse_serve, CT) as peer:
        peer.send(_store_rq(dataset))
        for at in range(0, len(data), piece):
            chunk = data[at : at + piece]
            peer.send(pdata(1, chunk, command=False, last=at + piece >= len(data)))
            if at + piece < len(data):
                with pytest.raises(TimeoutError):
                    peer.read_pdu(0.6)  # nothing (no abort) meanwhile
        pdu = peer.read_pdu(PROMPT * 5)
        assert isinstance(pdu, PDataTF), pdu
        response = decode_command(bytes(pdu.pdvs[0].data))
        assert isinstance(response, CStoreRSP) and response.status == 0, response
        assert isinstance(peer.release(PROMPT), ReleaseRP)


def test_an_association_aborted_and_lingering_holds_no_slot_nor_the_shutdown(
    tmp_path: Path,
) -> None:
    # Waiting in Sta13 for the peer to close (after serve's A-ABORT), an association kept its
    # --max-associations slot for the whole ARTIM, and SIGTERM waited --shutdown-grace for it.
    import signal

    port = free_port()
    argv = serve_argv(tmp_path / "archive", port, "--max-associations", "1",
                      "--acse-timeout", "30", "--shutdown-grace", "20")  # fmt: skip
    find = (ProposedContext(uids.STUDY_ROOT_FIND, (uids.IMPLICIT_VR_LE,)),)
    with running(argv, port) as proc, RawPeer(port) as peer:
        assert isinstance(peer.associate(echo_rq(contexts=find), timeout=PROMPT), AssociateAC)
        peer.send(pdata(1, encode_command(CFindRQ(1, uids.STUDY_ROOT_FIND))))
        peer.send(echo_command(2))  # a command where the identifier belongs: aborted
        assert abort_of(peer.read_pdu(PROMPT)) == (2, 6)
        assert echo_works(port) < PROMPT  # the slot is free, though the peer has not closed
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
        assert time.monotonic() - started < 5  # not the 20 s grace


def test_lingering_associations_are_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Holding no slot, associations waiting after serve's A-ABORT had no bound at all: one
    # client held 3,000 open (3,015 descriptors, 305 MB). Beyond the bound they close at once.
    import asyncio

    from netdicom.transport import server as server_module
    from tests.services.test_store_scp import serving

    monkeypatch.setattr(server_module, "_MAX_LINGERING", 2)

    async def main() -> None:
        async with serving(tmp_path) as app:
            peers = []
            for _ in range(5):
                peer = await asyncio.to_thread(RawPeer, app.server.port)
                assert isinstance(await asyncio.to_thread(peer.associate), AssociateAC)
                await asyncio.to_thread(peer.send, b"\x09\x00\x00\x00\x00\x00")  # no such PDU
                assert abort_of(await asyncio.to_thread(peer.read_pdu, 5))[0] == 2
                peers.append(peer)
            lingering = sum(1 for a in app.server.associations if a.lingering)
            assert lingering >= 3  # nothing trims them until a new connection comes
            newcomer = await asyncio.to_thread(RawPeer, app.server.port)
            await asyncio.sleep(0.3)
            assert sum(1 for a in app.server.associations if a.lingering) <= 2
            for peer in [*peers, newcomer]:
                peer.close()

    asyncio.run(asyncio.wait_for(main(), 60))


def test_a_release_in_the_middle_of_a_data_set_is_aborted(dimse_serve: int) -> None:
    # Walkthrough 6c: answered with A-RELEASE-RP, as if nothing had been lost in transit;
    # the C-STORE was dropped without a word. The peer hears it now.
    dataset = make_dataset()
    data = _implicit_le(dataset)
    with _associated(dimse_serve, CT) as peer:
        peer.send(_store_rq(dataset) + pdata(1, data[:64], command=False, last=False))
        peer.send(encode_pdu(ReleaseRQ()))
        answer = peer.read_pdu(PROMPT)
    assert isinstance(answer, AbortPDU), answer
    assert echo_works(dimse_serve) < PROMPT
