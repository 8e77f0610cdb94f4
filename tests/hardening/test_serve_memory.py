"""A peer cannot make `netdicom serve` hold memory out of proportion to what it is allowed to
send: an identifier that never ends, a data set sent as millions of empty fragments (found by
a black-box fuzz campaign: 800 MB held for the first, 500 MB for 23 MB of the second)."""

from __future__ import annotations

import select
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from netdicom.archive.matching import STUDY_ROOT_FIND
from netdicom.archive.writer import keep
from netdicom.core import uids
from netdicom.core.acse import ProposedContext
from netdicom.core.dimse import CFindRQ, CStoreRQ, encode_command
from netdicom.core.pdu import AssociateAC
from tests.dicomfiles import CT
from tests.hardening.raw import RawPeer, abort_of, echo_rq, echo_works, pdata
from tests.peers import free_port, running, serve_argv

MAX_PDU = 262144  # serve's default: the largest P-DATA-TF it takes


@pytest.fixture(scope="module")
def serve_proc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    port = free_port()
    with running(serve_argv(tmp_path_factory.mktemp("serve"), port, "-q"), port) as proc:
        yield port, proc.pid
        assert proc.poll() is None, "serve died"


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _associated(port: int, sop_class: str) -> RawPeer:
    peer = RawPeer(port)
    rq = echo_rq(contexts=(ProposedContext(sop_class, (uids.IMPLICIT_VR_LE,)),))
    assert isinstance(peer.associate(rq), AssociateAC)
    return peer


def test_an_identifier_that_never_ends_is_aborted(serve_proc: tuple[int, int]) -> None:
    port, pid = serve_proc
    before = _rss_mib(pid)
    with _associated(port, STUDY_ROOT_FIND) as peer:
        peer.send(pdata(1, encode_command(CFindRQ(1, STUDY_ROOT_FIND))))
        fragment = pdata(1, bytes(MAX_PDU - 6), command=False, last=False)
        sent = 0
        while sent < 16 << 20 and not select.select([peer.sock], [], [], 0)[0]:
            peer.sock.sendall(fragment)
            sent += len(fragment)
        # The cap is 4 MiB; the rest is socket buffers.
        # Reason 6, "invalid PDU parameter value": the peer now gets to read it.
        assert abort_of(peer.read_pdu(5.0)) == (2, 6), f"no A-ABORT after {sent} bytes"
        # Then serve reads and drops what still comes (Sta13): no reset, no memory held.
        for _ in range(16):
            peer.sock.sendall(fragment)
    assert _rss_mib(pid) - before < 32
    assert echo_works(port) < 1.0


def _element(group: int, element: int, value: bytes) -> bytes:
    value += b"\x00" * (len(value) % 2)
    return struct.pack("<HHI", group, element, len(value)) + value  # implicit VR LE


def test_a_data_set_in_empty_fragments_is_not_held(serve_proc: tuple[int, int]) -> None:
    port, pid = serve_proc
    before = _rss_mib(pid)
    instance = "1.2.826.0.1.3680043.9.9999.1"
    with _associated(port, CT) as peer:
        peer.send(pdata(1, encode_command(CStoreRQ(1, CT, instance))))
        # A CT whose pixel data declares 1 GiB (it goes to disk as it comes, through the
        # spool), then P-DATA-TFs packed with empty data fragments.
        start = (
            _element(0x0008, 0x0016, CT.encode())
            + _element(0x0008, 0x0018, instance.encode())
            + struct.pack("<HHI", 0x7FE0, 0x0010, 1 << 30)
        )
        peer.send(pdata(1, start, command=False, last=False))
        empty = b"\x00\x00\x00\x02\x01\x00"  # PDV: length 2, context 1, data, not last
        packed = b"\x04\x00" + struct.pack(">I", MAX_PDU // 6 * 6) + empty * (MAX_PDU // 6)
        started = time.monotonic()
        for _ in range(20):  # 870,000 fragments, 5 MB
            peer.sock.sendall(packed)
        # Queued fragments are worked through before anything after them: wait for them
        # (an echo on another association gets its turn between), then measure.
        time.sleep(1.0)
        while not echo_works(port) < 0.5 and time.monotonic() - started < 60:
            time.sleep(0.5)
        grown = _rss_mib(pid) - before
        peer.send(b"\x07\x00\x00\x00\x00\x04\x00\x00\x00\x00")  # A-ABORT
        peer.wait_closed(30)
    assert grown < 32, grown


def test_small_fragments_are_kept_together() -> None:
    pieces: list[bytes | bytearray | memoryview] = []
    big = memoryview(bytes(4096))
    for _ in range(10_000):
        keep(pieces, b"x")
        keep(pieces, b"")
    keep(pieces, big)
    keep(pieces, b"yz")
    assert [len(p) for p in pieces] == [10_000, 4096, 2]
    assert pieces[1] is big  # a large fragment stays the view it came in
    assert b"".join(pieces) == b"x" * 10_000 + bytes(4096) + b"yz"


def test_abort_reason_for_an_endless_identifier(serve_proc: tuple[int, int]) -> None:
    # The abort says why (PS3.8 Table 9-26: invalid PDU parameter value), and comes promptly.
    port, _ = serve_proc
    with _associated(port, STUDY_ROOT_FIND) as peer:
        peer.send(pdata(1, encode_command(CFindRQ(1, STUDY_ROOT_FIND))))
        fragment = pdata(1, bytes(1 << 16), command=False, last=False)
        for _ in range(70):  # 4.4 MiB: just past the cap
            peer.sock.sendall(fragment)
        assert abort_of(peer.read_pdu(5)) == (2, 6)


@pytest.mark.parametrize(("length", "refused"), [(300 << 10, True), (200 << 10, False)])
def test_an_associate_request_over_256_kib_is_refused_from_its_header(
    serve_proc: tuple[int, int], length: int, refused: bool
) -> None:
    # Before it is associated a peer may make serve hold one request: at most 256 KiB now
    # (was 1 MiB, and 400 peers held 490 MB). Past it, A-ABORT on the header alone.
    port, _ = serve_proc
    with RawPeer(port) as peer:
        peer.send(b"\x01\x00" + struct.pack(">I", length) + bytes(64))
        if refused:
            assert abort_of(peer.read_pdu(2)) == (2, 6)
        else:
            with pytest.raises(TimeoutError):  # waiting for the rest of it
                peer.read_pdu(0.5)
    assert echo_works(port) < 1.0
