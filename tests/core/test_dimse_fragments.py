"""Fragmentation into PDVs and reassembly (PS3.8 Annex E.2)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netdicom.core.dimse.fragments import (
    MAX_COMMAND_LENGTH,
    UNLIMITED_FRAGMENT,
    CommandReceived,
    DatasetFragment,
    MessageAssembler,
    fragment,
    max_fragment_length,
)
from netdicom.core.dimse.messages import CEchoRQ, CFindRSP, CStoreRQ, UnsupportedCommand
from netdicom.core.errors import AbortReason, LocalProtocolError, RemoteProtocolError
from netdicom.core.pdu.types import PDataTF, PresentationDataValue

# C-ECHO-RQ, Message ID 1, no data set (PS3.7 Annex E; see test_dimse_codec for the layout).
ECHO_RQ = (
    b"\x00\x00\x00\x00\x04\x00\x00\x00\x38\x00\x00\x00"  # (0000,0000) UL: 56
    b"\x00\x00\x02\x00\x12\x00\x00\x00"
    b"1.2.840.10008.1.1\x00"  # (0000,0002) UI 18
    b"\x00\x00\x00\x01\x02\x00\x00\x00\x30\x00"  # (0000,0100) US: C-ECHO-RQ
    b"\x00\x00\x10\x01\x02\x00\x00\x00\x01\x00"  # (0000,0110) US: Message ID 1
    b"\x00\x00\x00\x08\x02\x00\x00\x00\x01\x01"  # (0000,0800) US: no data set
)

# C-STORE-RQ, Message ID 3, SOP class "1.2", instance "1.2.3" + NUL, data set follows.
STORE_RQ = (
    b"\x00\x00\x00\x00\x04\x00\x00\x00\x42\x00\x00\x00"  # (0000,0000) UL: 66
    b"\x00\x00\x02\x00\x04\x00\x00\x00"
    b"1.2\x00"  # (0000,0002) UI 4
    b"\x00\x00\x00\x01\x02\x00\x00\x00\x01\x00"  # (0000,0100) US: C-STORE-RQ
    b"\x00\x00\x10\x01\x02\x00\x00\x00\x03\x00"  # (0000,0110) US: Message ID 3
    b"\x00\x00\x00\x07\x02\x00\x00\x00\x00\x00"  # (0000,0700) US: priority MEDIUM
    b"\x00\x00\x00\x08\x02\x00\x00\x00\x01\x00"  # (0000,0800) US: data set follows
    b"\x00\x00\x00\x10\x06\x00\x00\x00"
    b"1.2.3\x00"  # (0000,1000) UI 6
)
STORE_MESSAGE = CStoreRQ(3, "1.2", "1.2.3")

# N-EVENT-REPORT-RQ (0x0100), Message ID 4, event information follows.
N_EVENT_REPORT_RQ = (
    b"\x00\x00\x00\x01\x02\x00\x00\x00\x00\x01"  # (0000,0100) US: 0x0100
    b"\x00\x00\x10\x01\x02\x00\x00\x00\x04\x00"  # (0000,0110) US: Message ID 4
    b"\x00\x00\x00\x08\x02\x00\x00\x00\x01\x00"  # (0000,0800) US: data set follows
)


def cmd(data: bytes | memoryview, *, last: bool = True, ctx: int = 1) -> PresentationDataValue:
    return PresentationDataValue(context_id=ctx, is_command=True, is_last=last, data=data)


def ds(data: bytes | memoryview, *, last: bool = True, ctx: int = 1) -> PresentationDataValue:
    return PresentationDataValue(context_id=ctx, is_command=False, is_last=last, data=data)


# -- max_fragment_length ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("peer_max", "expected"),
    [
        (16384, 16378),  # the usual 16 KiB: one PDV of 6 + 16378
        (16383, 16376),  # 16377 is odd: round down
        (4096, 4090),
        (0xFFFFFFFF, 0xFFFFFFF8),  # dcmtk's "no limit" cap: 2^32 - 1 - 6 rounded down
        (8, 2),
        (9, 2),
        (7, 2),  # below 8: treated as 8
        (1, 2),
        (0, UNLIMITED_FRAGMENT),  # 0 = unlimited (PS3.8 D.1): our cap
    ],
)
def test_max_fragment_length(peer_max: int, expected: int) -> None:
    assert max_fragment_length(peer_max) == expected


def test_unlimited_fragment_is_even() -> None:
    assert UNLIMITED_FRAGMENT % 2 == 0


@pytest.mark.parametrize("bad", [-1, 1 << 32])
def test_max_fragment_length_rejects_non_uint32(bad: int) -> None:
    with pytest.raises(LocalProtocolError):
        max_fragment_length(bad)


# -- fragment -------------------------------------------------------------------------------


def test_fragment_slices_without_copy() -> None:
    data = bytearray(b"abcdefghij")
    pieces = list(fragment(data, 4))
    assert [bytes(p) for p in pieces] == [b"abcd", b"efgh", b"ij"]
    data[0] = ord("z")  # the slices view the caller's buffer
    assert bytes(pieces[0]) == b"zbcd"


def test_fragment_empty_yields_one_empty_piece() -> None:
    pieces = list(fragment(b"", 100))
    assert len(pieces) == 1
    assert bytes(pieces[0]) == b""


def test_fragment_odd_limit_rounds_down() -> None:
    assert [len(p) for p in fragment(b"x" * 11, 5)] == [4, 4, 3]


def test_fragment_of_one_byte() -> None:
    assert [bytes(p) for p in fragment(b"abc", 1)] == [b"a", b"b", b"c"]


def test_fragment_rejects_zero() -> None:
    with pytest.raises(LocalProtocolError):
        list(fragment(b"abc", 0))


def test_fragment_accepts_non_byte_memoryview() -> None:
    view = memoryview(b"\x01\x00\x02\x00\x03\x00").cast("H")
    assert [bytes(p) for p in fragment(view, 4)] == [b"\x01\x00\x02\x00", b"\x03\x00"]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000), st.integers(0, 70000))
def test_fragments_respect_limit_and_parity(data: bytes, peer_max: int) -> None:
    limit = max_fragment_length(peer_max)
    pieces = [bytes(p) for p in fragment(data, limit)]
    assert b"".join(pieces) == data
    assert all(len(p) <= limit for p in pieces)
    assert all(len(p) % 2 == 0 for p in pieces[:-1])
    assert all(pieces) or pieces == [b""]


# -- MessageAssembler -----------------------------------------------------------------------


def test_command_without_data_set() -> None:
    assembler = MessageAssembler([1])
    assert assembler.feed(cmd(ECHO_RQ)) == [CommandReceived(1, CEchoRQ(1))]
    assert not assembler.expecting_dataset
    assert assembler.idle


def test_many_pdvs_in_one_pdu() -> None:
    pdu = PDataTF(
        pdvs=(
            cmd(STORE_RQ[:20], last=False),
            cmd(STORE_RQ[20:], last=True),
            ds(b"\x08\x00", last=False),
            ds(b"\x10\x00", last=True),
            cmd(ECHO_RQ),
        )
    )
    assembler = MessageAssembler([1])
    events = assembler.feed_all(pdu.pdvs)
    assert events == [
        CommandReceived(1, STORE_MESSAGE),
        DatasetFragment(1, b"\x08\x00", False),
        DatasetFragment(1, b"\x10\x00", True),
        CommandReceived(1, CEchoRQ(1)),
    ]


def test_one_message_over_many_pdus() -> None:
    assembler = MessageAssembler([1, 3])
    pdus = [
        PDataTF(pdvs=(cmd(STORE_RQ[:40], last=False, ctx=3),)),
        PDataTF(pdvs=(cmd(STORE_RQ[40:], ctx=3),)),
        PDataTF(pdvs=(ds(b"ab", last=False, ctx=3),)),
        PDataTF(pdvs=(ds(b"cd", last=False, ctx=3),)),
        PDataTF(pdvs=(ds(b"ef", ctx=3),)),
    ]
    events = []
    for pdu in pdus:
        events.extend(assembler.feed_all(pdu.pdvs))
    assert events[0] == CommandReceived(3, STORE_MESSAGE)
    assert assembler.idle
    assert [e.data for e in events[1:] if isinstance(e, DatasetFragment)] == [b"ab", b"cd", b"ef"]
    assert [e.is_last for e in events[1:] if isinstance(e, DatasetFragment)] == [
        False,
        False,
        True,
    ]


def test_one_byte_fragments() -> None:
    assembler = MessageAssembler([1])
    events = []
    for i in range(len(STORE_RQ)):
        events += assembler.feed(cmd(STORE_RQ[i : i + 1], last=i == len(STORE_RQ) - 1))
        if i < len(STORE_RQ) - 1:
            assert assembler.command_in_progress
    assert events == [CommandReceived(1, STORE_MESSAGE)]
    assert assembler.expecting_dataset
    dataset = b"\x10\x00\x10\x00\x04\x00\x00\x00ABCD"
    for i in range(len(dataset)):
        events += assembler.feed(ds(dataset[i : i + 1], last=i == len(dataset) - 1))
    assert b"".join(bytes(e.data) for e in events if isinstance(e, DatasetFragment)) == dataset
    assert not assembler.expecting_dataset


def test_dataset_fragments_are_passed_through_unbuffered() -> None:
    assembler = MessageAssembler([1])
    assembler.feed(cmd(STORE_RQ))
    chunk = memoryview(b"\x00" * 1024)
    (event,) = assembler.feed(ds(chunk, last=False))
    assert isinstance(event, DatasetFragment)
    assert event.data is chunk


def test_command_fragments_are_copied() -> None:
    buffer = bytearray(STORE_RQ)
    assembler = MessageAssembler([1])
    assembler.feed(cmd(memoryview(buffer)[:30], last=False))
    buffer[:30] = b"\xff" * 30  # a receive buffer being reused
    (event,) = assembler.feed(cmd(STORE_RQ[30:]))
    assert event == CommandReceived(1, STORE_MESSAGE)


def test_pending_find_response_with_identifier() -> None:
    find_rsp = (
        b"\x00\x00\x00\x01\x02\x00\x00\x00\x20\x80"  # (0000,0100) US: C-FIND-RSP
        b"\x00\x00\x20\x01\x02\x00\x00\x00\x02\x00"  # (0000,0120) US: responding to 2
        b"\x00\x00\x00\x08\x02\x00\x00\x00\x01\x00"  # (0000,0800) US: identifier follows
        b"\x00\x00\x00\x09\x02\x00\x00\x00\x00\xff"  # (0000,0900) US: 0xFF00 pending
    )
    assembler = MessageAssembler([5])
    events = assembler.feed_all([cmd(find_rsp, ctx=5), ds(b"id", ctx=5)])
    assert events == [
        CommandReceived(5, CFindRSP(2, 0xFF00, has_dataset=True)),
        DatasetFragment(5, b"id", True),
    ]


def test_unsupported_command_is_reported_and_its_data_set_streamed() -> None:
    assembler = MessageAssembler([1])
    events = assembler.feed_all([cmd(N_EVENT_REPORT_RQ), ds(b"xx", last=True), cmd(ECHO_RQ)])
    assert events == [
        CommandReceived(1, UnsupportedCommand(0x0100, 4, None, True)),
        DatasetFragment(1, b"xx", True),
        CommandReceived(1, CEchoRQ(1)),
    ]


# -- errors ---------------------------------------------------------------------------------


def assert_abort(exc: RemoteProtocolError, field: str) -> None:
    assert exc.abort_reason is AbortReason.INVALID_PDU_PARAMETER_VALUE
    assert int(exc.abort_reason) == 6
    assert exc.field == field


def test_pdv_on_unaccepted_context() -> None:
    assembler = MessageAssembler([1, 3])
    with pytest.raises(RemoteProtocolError) as info:
        assembler.feed(cmd(ECHO_RQ, ctx=5))
    assert_abort(info.value, "presentation context ID")


def test_data_set_before_last_command_fragment() -> None:
    assembler = MessageAssembler([1])
    assembler.feed(cmd(STORE_RQ[:10], last=False))
    with pytest.raises(RemoteProtocolError) as info:
        assembler.feed(ds(b"ab"))
    assert_abort(info.value, "message control header")
    assert "before the command" in str(info.value)


def test_data_set_when_command_announced_none() -> None:
    assembler = MessageAssembler([1])
    assembler.feed(cmd(ECHO_RQ))
    with pytest.raises(RemoteProtocolError) as info:
        assembler.feed(ds(b"ab"))
    assert_abort(info.value, "message control header")


def test_data_set_with_no_command_at_all() -> None:
    with pytest.raises(RemoteProtocolError) as info:
        MessageAssembler([1]).feed(ds(b"ab"))
    assert_abort(info.value, "message control header")


def test_data_set_on_another_context() -> None:
    assembler = MessageAssembler([1, 3])
    assembler.feed(cmd(STORE_RQ, ctx=1))
    with pytest.raises(RemoteProtocolError) as info:
        assembler.feed(ds(b"ab", ctx=3))
    assert_abort(info.value, "presentation context ID")


def test_command_fragment_while_data_set_expected() -> None:
    assembler = MessageAssembler([1])
    assembler.feed(cmd(STORE_RQ))
    assembler.feed(ds(b"ab", last=False))
    with pytest.raises(RemoteProtocolError) as info:
        assembler.feed(cmd(ECHO_RQ))
    assert_abort(info.value, "message control header")


def test_command_fragments_on_two_contexts() -> None:
    assembler = MessageAssembler([1, 3])
    assembler.feed(cmd(STORE_RQ[:10], last=False, ctx=1))
    with pytest.raises(RemoteProtocolError) as info:
        assembler.feed(cmd(STORE_RQ[10:], ctx=3))
    assert_abort(info.value, "presentation context ID")


def test_command_length_is_capped() -> None:
    assembler = MessageAssembler([1])
    chunk = b"\x00" * 16384
    for _ in range(MAX_COMMAND_LENGTH // len(chunk)):
        assert assembler.feed(cmd(chunk, last=False)) == []
    with pytest.raises(RemoteProtocolError) as info:
        assembler.feed(cmd(b"\x00\x00", last=False))
    assert_abort(info.value, "command set length")


def test_garbled_command_raises_remote_error() -> None:
    with pytest.raises(RemoteProtocolError) as info:
        MessageAssembler([1]).feed(cmd(ECHO_RQ[:-3]))
    assert info.value.abort_reason is AbortReason.INVALID_PDU_PARAMETER_VALUE


# -- property: any split reassembles ---------------------------------------------------------


@st.composite
def split(draw: st.DrawFn, data: bytes) -> list[bytes]:
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(data) - 1)), max_size=12)))
    bounds = [0, *[c for c in cuts if c < len(data)], len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


@settings(max_examples=200, deadline=None)
@given(st.data(), st.binary(min_size=1, max_size=400), st.integers(1, 255))
def test_random_splits_reassemble(data: st.DataObject, dataset: bytes, ctx: int) -> None:
    command_parts = data.draw(split(STORE_RQ))
    dataset_parts = data.draw(split(dataset))
    pdvs = [cmd(p, last=i == len(command_parts) - 1, ctx=ctx) for i, p in enumerate(command_parts)]
    pdvs += [ds(p, last=i == len(dataset_parts) - 1, ctx=ctx) for i, p in enumerate(dataset_parts)]
    # Group the PDVs into PDUs at random boundaries too.
    per_pdu = data.draw(st.integers(1, 5))
    assembler = MessageAssembler([ctx])
    events = []
    for start in range(0, len(pdvs), per_pdu):
        events += assembler.feed_all(PDataTF(pdvs=tuple(pdvs[start : start + per_pdu])).pdvs)
    assert events[0] == CommandReceived(ctx, STORE_MESSAGE)
    fragments = [e for e in events[1:] if isinstance(e, DatasetFragment)]
    assert len(fragments) == len(events) - 1
    assert b"".join(bytes(f.data) for f in fragments) == dataset
    assert [f.is_last for f in fragments] == [False] * (len(fragments) - 1) + [True]
    assert assembler.idle
