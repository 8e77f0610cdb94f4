"""Incremental framer: any chunking gives the same PDUs; caps are enforced from the header."""

from __future__ import annotations

import time
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netdicom.core.errors import AbortReason, LocalProtocolError, RemoteProtocolError
from netdicom.core.pdu.framer import INTERNAL_PDATA_CAP, Framer
from netdicom.core.pdu.types import PDU, PDataTF, ReleaseRQ

from .pdu_vectors import LENIENT, ROUND_TRIP, Vector

STREAM = b"".join(v.data for v in ROUND_TRIP + LENIENT)
EXPECTED = [v.value for v in ROUND_TRIP + LENIENT]

RELEASE_RQ = b"\x05\x00\x00\x00\x00\x04\x00\x00\x00\x00"  # A-RELEASE-RQ, length 4, reserved


def drain(framer: Framer) -> list[PDU]:
    out = []
    while (pdu := framer.next_pdu()) is not None:
        out.append(pdu)
    return out


def pdata_header(length: int) -> bytes:
    return b"\x04\x00" + length.to_bytes(4, "big")  # P-DATA-TF, reserved, PDU length


def pdata(fragment_length: int) -> bytes:
    """One P-DATA-TF with one PDV of `fragment_length` bytes (context 1, data set, last)."""
    return b"".join(
        (
            pdata_header(fragment_length + 6),  # PDU length = 4 + 2 + fragment
            (fragment_length + 2).to_bytes(4, "big"),  # PDV length = 2 + fragment
            b"\x01\x02",  # context 1, data set, last
            bytes(fragment_length),
        )
    )


# --- chunking --------------------------------------------------------------------------------


def test_all_at_once() -> None:
    framer = Framer(max_pdata_length=16384)
    framer.feed(STREAM)
    assert drain(framer) == EXPECTED
    assert framer.pending() == 0


def test_one_byte_at_a_time() -> None:
    framer = Framer(max_pdata_length=16384)
    out: list[PDU] = []
    for i in range(len(STREAM)):
        framer.feed(STREAM[i : i + 1])
        out.extend(drain(framer))
    assert out == EXPECTED
    assert framer.pending() == 0


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 400), min_size=1, max_size=60))
def test_any_chunking_gives_the_same_pdus(sizes: list[int]) -> None:
    framer = Framer(max_pdata_length=16384)
    out: list[PDU] = []
    pos = 0
    i = 0
    while pos < len(STREAM):
        size = sizes[i % len(sizes)]
        framer.feed(memoryview(STREAM)[pos : pos + size])
        pos += size
        i += 1
        out.extend(drain(framer))
    assert out == EXPECTED


@pytest.mark.parametrize("vec", ROUND_TRIP, ids=lambda v: v.name)
def test_incomplete_pdu_is_pending(vec: Vector) -> None:
    framer = Framer(max_pdata_length=16384)
    for n in range(len(vec.data) - 1):
        framer.feed(vec.data[n : n + 1])
        assert framer.next_pdu() is None
        assert framer.pending() == n + 1
        assert framer.peek_pdu_type() == vec.pdu_type
    framer.feed(vec.data[-1:])
    assert framer.next_pdu() == vec.value
    assert framer.pending() == 0
    assert framer.peek_pdu_type() is None


def test_peek_before_anything_arrives() -> None:
    framer = Framer(0)
    assert framer.peek_pdu_type() is None
    assert framer.next_pdu() is None
    assert framer.pending() == 0


def test_bytearray_input_can_be_reused_by_the_caller() -> None:
    framer = Framer(0)
    chunk = bytearray(pdata(4))
    framer.feed(chunk)
    chunk[-1] = 0xFF  # the transport reuses its read buffer
    pdu = framer.next_pdu()
    assert isinstance(pdu, PDataTF)
    assert bytes(pdu.pdvs[0].data) == b"\x00\x00\x00\x00"


def test_pdv_data_is_read_only() -> None:
    framer = Framer(0)
    framer.feed(pdata(4) + pdata(2))
    for _ in range(2):
        pdu = framer.next_pdu()
        assert isinstance(pdu, PDataTF)
        data = pdu.pdvs[0].data
        assert isinstance(data, memoryview) and data.readonly


# --- caps, checked from the header before the body is buffered -----------------------------------


def test_huge_declared_length_refused_after_the_header() -> None:
    framer = Framer(max_pdata_length=16384)
    framer.feed(b"\x04\x00\xff\xff\xff")  # 5 bytes: length not complete yet
    assert framer.next_pdu() is None
    framer.feed(b"\xff" + bytes(1000))  # 6th header byte, and 1000 body bytes
    with pytest.raises(RemoteProtocolError) as info:
        framer.next_pdu()
    assert info.value.field == "P-DATA-TF length"
    assert info.value.abort_reason == AbortReason.INVALID_PDU_PARAMETER_VALUE
    assert framer.pending() == 0  # nothing of the refused PDU is kept
    framer.feed(bytes(100_000))  # and nothing more is buffered afterwards
    assert framer.pending() == 0
    with pytest.raises(RemoteProtocolError):  # the stream stays unreadable
        framer.next_pdu()


@pytest.mark.parametrize(("pdu_type", "name"), [(1, "A-ASSOCIATE-RQ"), (7, "A-ABORT")])
def test_association_pdus_are_capped_too(pdu_type: int, name: str) -> None:
    framer = Framer(max_pdata_length=0, max_other_length=1000)
    framer.feed(bytes((pdu_type, 0)) + (1001).to_bytes(4, "big"))
    with pytest.raises(RemoteProtocolError) as info:
        framer.next_pdu()
    assert info.value.field == f"{name} length"


def test_unknown_pdu_type_refused_after_one_byte() -> None:
    framer = Framer(max_pdata_length=16384)
    framer.feed(b"\x08")
    assert framer.pending() == 0
    with pytest.raises(RemoteProtocolError) as info:
        framer.next_pdu()
    assert info.value.field == "PDU type"
    assert info.value.abort_reason == AbortReason.UNRECOGNIZED_PDU


def test_pdata_at_our_maximum_is_accepted_above_is_refused() -> None:
    framer = Framer(max_pdata_length=100)
    framer.feed(pdata(94))  # PDU length 100 = the advertised maximum
    pdu = framer.next_pdu()
    assert isinstance(pdu, PDataTF) and len(pdu.pdvs[0].data) == 94
    framer.feed(pdata_header(101))
    with pytest.raises(RemoteProtocolError) as info:
        framer.next_pdu()
    assert info.value.field == "P-DATA-TF length"


def test_max_zero_means_the_internal_cap() -> None:
    framer = Framer(max_pdata_length=0)
    framer.feed(pdata_header(INTERNAL_PDATA_CAP))
    assert framer.next_pdu() is None  # allowed: waiting for the body
    assert framer.pending() == 6
    framer = Framer(max_pdata_length=0)
    framer.feed(pdata_header(INTERNAL_PDATA_CAP + 1))
    with pytest.raises(RemoteProtocolError):
        framer.next_pdu()


def test_the_pdata_cap_does_not_apply_to_association_pdus() -> None:
    framer = Framer(max_pdata_length=10)
    framer.feed(ROUND_TRIP[0].data)  # a 441-byte A-ASSOCIATE-RQ
    assert framer.next_pdu() == ROUND_TRIP[0].value


def test_good_pdus_before_a_bad_header_come_out_first() -> None:
    framer = Framer(max_pdata_length=16384)
    framer.feed(RELEASE_RQ + RELEASE_RQ + b"\x99\x00\x00\x00\x00\x04" + RELEASE_RQ)
    assert framer.next_pdu() == ReleaseRQ()
    assert framer.next_pdu() == ReleaseRQ()
    with pytest.raises(RemoteProtocolError) as info:
        framer.next_pdu()
    assert info.value.abort_reason == AbortReason.UNRECOGNIZED_PDU
    with pytest.raises(RemoteProtocolError):
        framer.next_pdu()


def test_good_pdu_right_before_a_bad_header_then_the_error() -> None:
    # The buffer holds exactly one good PDU once the bad header is cut off.
    framer = Framer(max_pdata_length=16384)
    framer.feed(RELEASE_RQ + b"\x04\x00\xff\xff\xff\xff")
    assert framer.next_pdu() == ReleaseRQ()
    with pytest.raises(RemoteProtocolError):
        framer.next_pdu()


def test_malformed_body_is_consumed_and_the_stream_goes_on() -> None:
    framer = Framer(max_pdata_length=16384)
    # A-ASSOCIATE-RJ with length 3 (must be 4), then a valid A-RELEASE-RQ.
    framer.feed(b"\x03\x00\x00\x00\x00\x03\x00\x01\x01" + RELEASE_RQ)
    with pytest.raises(RemoteProtocolError) as info:
        framer.next_pdu()
    assert info.value.field == "A-ASSOCIATE-RJ length"
    assert framer.next_pdu() == ReleaseRQ()


@pytest.mark.parametrize(("pdata_max", "other_max"), [(-1, 10), (1 << 32, 10), (10, -1)])
def test_bad_caps_are_refused(pdata_max: int, other_max: int) -> None:
    with pytest.raises(LocalProtocolError):
        Framer(pdata_max, other_max)


# --- memory and speed ------------------------------------------------------------------------


def test_declared_length_is_not_allocated_up_front() -> None:
    tracemalloc.start()
    try:
        framer = Framer(max_pdata_length=0xFFFFFFFF)  # we advertised the largest value
        framer.feed(pdata_header(0xFFFFFFFF))
        assert framer.next_pdu() is None  # accepted, waiting
        framer.feed(bytes(1000))
        assert framer.next_pdu() is None
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert framer.pending() == 1006
    assert peak < 64 * 1024  # grows with what arrived, not with what was declared


def test_large_stream_in_small_chunks_is_linear() -> None:
    pdu = pdata(65536 - 6)
    count = 64
    stream = pdu * count  # 4 MiB
    framer = Framer(max_pdata_length=65536)
    start = time.perf_counter()
    got = 0
    for pos in range(0, len(stream), 1400):  # TCP-segment-sized reads
        framer.feed(stream[pos : pos + 1400])
        while (p := framer.next_pdu()) is not None:
            assert isinstance(p, PDataTF) and len(p.pdvs[0].data) == 65536 - 6
            got += 1
    elapsed = time.perf_counter() - start
    assert got == count
    assert framer.pending() == 0
    assert elapsed < 2.0  # quadratic copying would take far longer


# --- hypothesis: garbage in, PDUs or RemoteProtocolError out ---------------------------------


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.integers(1, 50))
def test_random_streams_never_escape(data: bytes, chunk: int) -> None:
    framer = Framer(max_pdata_length=200, max_other_length=300)
    try:
        for pos in range(0, len(data), chunk):
            framer.feed(data[pos : pos + chunk])
            drain(framer)
    except RemoteProtocolError as exc:
        assert exc.field


_mutation = st.tuples(st.integers(0, 100_000), st.integers(0, 255))


@settings(max_examples=300, deadline=None)
@given(st.lists(_mutation, min_size=1, max_size=8), st.integers(1, 300))
def test_mutated_streams_never_escape(mutations: list[tuple[int, int]], chunk: int) -> None:
    data = bytearray(STREAM)
    for where, value in mutations:
        data[where % len(data)] = value
    framer = Framer(max_pdata_length=16384)
    pos = 0
    while pos < len(data):
        framer.feed(data[pos : pos + chunk])
        pos += chunk
        while True:
            try:
                if framer.next_pdu() is None:
                    break
            except RemoteProtocolError as exc:
                assert exc.field
                if framer.pending() == 0 and framer.peek_pdu_type() is None:
                    break
