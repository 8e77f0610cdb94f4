"""transport.receiver.PduReceiver: the same PDUs and errors as core.pdu.Framer whatever the
read sizes, views that stay valid while arenas are reused, no allocation on a declared length."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netdicom.core.errors import AbortReason, RemoteProtocolError
from netdicom.core.pdu import (
    PDU,
    AbortPDU,
    Framer,
    PDataTF,
    PresentationDataValue,
    ReleaseRQ,
    encode_pdu,
)
from netdicom.transport.receiver import PduReceiver


def pdata(size: int, fill: int) -> bytes:
    return encode_pdu(PDataTF((PresentationDataValue(1, False, True, bytes([fill]) * size),)))


def receive(rx: PduReceiver, stream: bytes, reads: list[int]) -> list[PDU | RemoteProtocolError]:
    """Deliver `stream` as a socket would (each read at most the buffer offered and the next
    size of `reads`, cycled) and collect what comes out, errors included."""
    out: list[PDU | RemoteProtocolError] = []
    pos = 0
    turn = 0
    while pos < len(stream):
        buffer = rx.get_buffer()
        assert len(buffer) > 0
        count = min(len(buffer), reads[turn % len(reads)], len(stream) - pos)
        turn += 1
        buffer[:count] = stream[pos : pos + count]
        del buffer
        rx.buffer_updated(count)
        pos += count
        while True:
            try:
                pdu = rx.next_pdu()
            except RemoteProtocolError as exc:
                out.append(exc)
                return out
            if pdu is None:
                break
            out.append(pdu)
    return out


SIZES = st.sampled_from([0, 2, 6, 100, 4090, 16_000, 70_000, 131_066, 262_138])


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(SIZES, min_size=1, max_size=12),
    reads=st.lists(st.integers(min_value=1, max_value=1 << 20), min_size=1, max_size=6),
)
def test_same_pdus_as_the_framer_whatever_the_reads(sizes: list[int], reads: list[int]) -> None:
    pdus = [pdata(size, index) for index, size in enumerate(sizes)]
    pdus.insert(len(pdus) // 2, encode_pdu(ReleaseRQ()))
    stream = b"".join(pdus)
    framer = Framer(262_144)
    framer.feed(stream)
    expected = []
    while (pdu := framer.next_pdu()) is not None:
        expected.append(pdu)
    got = receive(PduReceiver(262_144), stream, reads)
    assert got == expected
    # Every PDU handed out is still intact after later arenas were reused.
    assert [encode_pdu(p) for p in got if not isinstance(p, RemoteProtocolError)] == pdus


def test_views_stay_intact_while_arenas_are_reused() -> None:
    rx = PduReceiver(262_144)
    kept: list[PDU] = []
    raw: list[bytes] = []
    for index in range(300):
        data = pdata(131_066 if index % 3 else 5000, index % 251)
        raw.append(data)
        got = receive(rx, data, [65_536, 1_000_000, 7])
        assert len(got) == 1 and not isinstance(got[0], RemoteProtocolError)
        if index % 2:
            kept.append(got[0])  # half are dropped: their arenas may be reused
        else:
            kept.append(AbortPDU())  # placeholder, keeps the indexes aligned
    for index, pdu in enumerate(kept):
        if index % 2:
            assert encode_pdu(pdu) == raw[index]


def test_unknown_type_after_good_pdus() -> None:
    stream = pdata(10, 1) + encode_pdu(ReleaseRQ()) + b"\x42\x00\x00\x00\x00\x04abcd"
    got = receive(PduReceiver(16_384), stream, [3])
    assert isinstance(got[0], PDataTF) and isinstance(got[1], ReleaseRQ)
    error = got[2]
    assert isinstance(error, RemoteProtocolError)
    assert error.abort_reason == AbortReason.UNRECOGNIZED_PDU
    assert "0x42" in str(error)


def test_framing_error_is_sticky_and_later_bytes_are_dropped() -> None:
    rx = PduReceiver(16_384)
    rx.feed(b"\x04\x00\x00\x01\x00\x00" + pdata(10, 1))  # P-DATA-TF declaring 64 KiB > 16 KiB
    for _ in range(2):
        with pytest.raises(RemoteProtocolError) as caught:
            rx.next_pdu()
        assert caught.value.abort_reason == AbortReason.INVALID_PDU_PARAMETER_VALUE
    rx.feed(pdata(10, 2))
    with pytest.raises(RemoteProtocolError):
        rx.next_pdu()


def test_malformed_pdu_raises_once_and_is_consumed() -> None:
    # A-RELEASE-RQ must have a 4-byte body; a 2-byte one is framed but cannot be decoded.
    rx = PduReceiver(16_384)
    rx.feed(b"\x05\x00\x00\x00\x00\x02\x00\x00" + encode_pdu(ReleaseRQ()))
    with pytest.raises(RemoteProtocolError):
        rx.next_pdu()
    assert isinstance(rx.next_pdu(), ReleaseRQ)
    assert rx.next_pdu() is None


def test_a_declared_length_allocates_nothing_and_is_pending() -> None:
    rx = PduReceiver(0)  # no limit advertised: the internal cap (4 MiB) applies
    rx.feed(b"\x04\x00\x00\x3f\xff\xf0")  # a P-DATA-TF announcing ~4 MiB
    assert rx.next_pdu() is None
    assert rx.pending() == 6
    assert len(rx.get_buffer()) < 64 * 1024  # the first arena, not 4 MiB
    rx.feed(b"\x00" * 100)
    assert rx.pending() == 106


def test_drop_discards_everything_after() -> None:
    rx = PduReceiver(16_384)
    rx.drop()
    rx.feed(pdata(10, 1))
    assert rx.next_pdu() is None
    assert rx.pending() == 0


def test_release_lets_go_of_the_arenas_at_once() -> None:
    # A closed connection's arenas are freed when it closes, not when the association is
    # collected (a reference cycle postpones that): waves of peers held hundreds of MB.
    import gc
    import tracemalloc

    gc.disable()  # nothing is freed behind the test's back
    tracemalloc.start()
    try:
        rx = PduReceiver(1 << 20)
        pdus = receive(rx, pdata(900_000, 1) * 6, [1 << 20] * 8)
        assert len(pdus) == 6
        del pdus
        held = tracemalloc.get_traced_memory()[0]
        rx.release()
        assert held - tracemalloc.get_traced_memory()[0] > 1 << 20
        # Later reads (a peer still sending after our A-ABORT) go to one small sink, reused.
        sink = rx.get_buffer()
        assert len(sink) <= 65536
        rx.buffer_updated(len(sink))
        assert rx.get_buffer() is sink
        assert rx.next_pdu() is None  # dropped, not framed
    finally:
        tracemalloc.stop()
        gc.enable()
