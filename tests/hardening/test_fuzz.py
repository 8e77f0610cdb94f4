"""Fuzz the receive path in-process: random bytes and mutations of valid PDUs, split at random
points, go through the framer, the PDU decoder, the Upper Layer machine (from every state a
peer can talk to) and the DIMSE reassembler. Only the documented error (RemoteProtocolError)
may come out, the machine never raises on a remote event, and every decoded PDU is bounded
by the caps we chose, never by what the peer declared."""

from __future__ import annotations

import itertools
from collections.abc import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netdicom.core.dimse import MessageAssembler
from netdicom.core.errors import RemoteProtocolError
from netdicom.core.pdu import (
    PDU,
    AbortPDU,
    AssociateAC,
    AssociateRJ,
    AssociateRQ,
    ContextResult,
    Framer,
    PDataTF,
    PDUType,
    PresentationContextAC,
    ReleaseRQ,
    UserInformation,
    encode_pdu,
)
from netdicom.core.ul.effects import (
    CloseTransport,
    ConnectTransport,
    Indicate,
    SendPDU,
    StartArtim,
    StopArtim,
)
from netdicom.core.ul.machine import StateMachine
from netdicom.core.ul.states import Event, State
from tests.core.pdu_vectors import ROUND_TRIP, Vector
from tests.hardening.raw import echo_command, echo_rq

MAX_PDU = 16384
OTHER_CAP = 65536

_EVENT_FOR_PDU = {
    PDUType.ASSOCIATE_RQ: Event.EVT6,
    PDUType.ASSOCIATE_AC: Event.EVT3,
    PDUType.ASSOCIATE_RJ: Event.EVT4,
    PDUType.P_DATA_TF: Event.EVT10,
    PDUType.RELEASE_RQ: Event.EVT12,
    PDUType.RELEASE_RP: Event.EVT13,
    PDUType.ABORT: Event.EVT16,
}
_EFFECTS = (SendPDU, StartArtim, StopArtim, ConnectTransport, CloseTransport, Indicate)

_RQ = echo_rq()
_AC = AssociateAC(
    "NETDICOM",
    "RAWPEER",
    (PresentationContextAC(1, ContextResult.ACCEPTANCE),),
    UserInformation(max_length=MAX_PDU),
)


def _acceptor(*events: tuple[Event, PDU | None]) -> Callable[[], StateMachine]:
    def make() -> StateMachine:
        machine = StateMachine(requestor=False)
        machine.handle(Event.EVT5)
        for event, pdu in events:
            machine.handle(event, pdu)
        return machine

    return make


def _requestor(*events: tuple[Event, PDU | None]) -> Callable[[], StateMachine]:
    def make() -> StateMachine:
        machine = StateMachine(requestor=True)
        machine.handle(Event.EVT1, _RQ)
        machine.handle(Event.EVT2)
        for event, pdu in events:
            machine.handle(event, pdu)
        return machine

    return make


# Every state in which bytes can arrive from a peer, reached the way a real exchange does.
STARTS: dict[State, Callable[[], StateMachine]] = {
    State.STA2: _acceptor(),
    State.STA3: _acceptor((Event.EVT6, _RQ)),
    State.STA5: _requestor(),
    State.STA6: _requestor((Event.EVT3, _AC)),
    State.STA7: _requestor((Event.EVT3, _AC), (Event.EVT11, None)),
    State.STA8: _acceptor((Event.EVT6, _RQ), (Event.EVT7, _AC), (Event.EVT12, ReleaseRQ())),
    State.STA13: _acceptor((Event.EVT6, _RQ), (Event.EVT8, AssociateRJ(1, 1, 1))),
}


_VALID: tuple[bytes, ...] = (
    *(v.data for v in ROUND_TRIP),
    encode_pdu(_RQ),
    encode_pdu(_AC),
    echo_command(1),
    b"".join(echo_command(i) for i in range(1, 4)),
)
_LENGTH_FIELDS: dict[bytes, tuple[tuple[int, int], ...]] = {
    v.data: v.length_fields for v in ROUND_TRIP if isinstance(v, Vector)
}


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid PDU (or several) with a few typed mutations."""
    data = bytearray(draw(st.sampled_from(_VALID)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "set", "insert", "delete", "length", "cut"]))
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set":
            data[at] = draw(st.sampled_from([0x00, 0x01, 0x7F, 0x80, 0xFF]))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        elif kind == "cut":
            del data[at:]
        else:
            fields = _LENGTH_FIELDS.get(bytes(data)) or ((2, 4),)
            offset, width = draw(st.sampled_from(fields))
            value = draw(st.sampled_from([0, 1, 2, 0xFFFF, 0xFFFFFFFF, len(data)]))
            if offset + width <= len(data):
                data[offset : offset + width] = (value & ((1 << (8 * width)) - 1)).to_bytes(
                    width, "big"
                )
    return bytes(data)


streams = st.one_of(
    st.binary(max_size=512),
    mutated(),
    st.lists(st.one_of(mutated(), st.sampled_from(_VALID)), min_size=2, max_size=4).map(b"".join),
)


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def _frame(data: bytes, cuts: list[int]) -> tuple[list[PDU], RemoteProtocolError | None]:
    framer = Framer(MAX_PDU, OTHER_CAP)
    pdus: list[PDU] = []
    for chunk in _chunks(data, cuts):
        framer.feed(chunk)
        while True:
            try:
                pdu = framer.next_pdu()
            except RemoteProtocolError as exc:
                return pdus, exc
            if pdu is None:
                break
            pdus.append(pdu)
    # Buffered bytes never exceed what arrived (no allocation sized by a declaration).
    assert framer.pending() <= len(data)
    return pdus, None


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=streams,
    cuts=st.lists(st.integers(0, 4096), max_size=6),
    start=st.sampled_from(list(STARTS)),
)
def test_fuzzed_bytes_give_only_documented_errors(
    data: bytes, cuts: list[int], start: State
) -> None:
    pdus, error = _frame(data, cuts)
    machine = STARTS[start]()
    assembler = MessageAssembler({1})
    events: list[tuple[Event, PDU | None]] = [(_EVENT_FOR_PDU[p.pdu_type], p) for p in pdus]
    if error is not None:
        assert error.abort_reason in (1, 2, 4, 5, 6)
        events.append((Event.EVT19, None))
    events.append((Event.EVT17, None))  # and then the peer hangs up
    for event, pdu in events:
        if isinstance(pdu, PDataTF):
            assert all(len(v.data) <= MAX_PDU for v in pdu.pdvs)
            try:
                for pdv in pdu.pdvs:
                    assembler.feed(pdv)
            except RemoteProtocolError:
                assembler = MessageAssembler({1})
        reason = error.abort_reason if event is Event.EVT19 and error else 0
        effects = machine.handle(event, pdu, abort_reason=reason)  # type: ignore[arg-type]
        for effect in effects:
            assert isinstance(effect, _EFFECTS)
            if isinstance(effect, SendPDU):
                # Whatever we answer is a valid PDU we can encode.
                encode_pdu(effect.pdu)
                if isinstance(effect.pdu, AbortPDU):
                    assert effect.pdu.source in (0, 2)
        if machine.state is State.STA1:
            break
    # Whatever came before, the hang-up leaves nothing behind (Evt17 closes in every state).
    assert machine.state is State.STA1


@settings(max_examples=200, deadline=None)
@given(
    rq=st.sampled_from([v.data for v in ROUND_TRIP if v.pdu_type == 1] + [encode_pdu(_RQ)]),
    at=st.integers(6, 400),
    value=st.integers(0, 0xFFFF),
)
def test_associate_rq_item_lengths_never_escape(rq: bytes, at: int, value: int) -> None:
    # Any 16-bit item/sub-item length anywhere in an A-ASSOCIATE-RQ: a value or the error.
    if at + 2 > len(rq):
        at = len(rq) - 2
    data = rq[:at] + value.to_bytes(2, "big") + rq[at + 2 :]
    pdus, error = _frame(data, [])
    assert len(pdus) + (error is not None) == 1
    if pdus:
        assert isinstance(pdus[0], AssociateRQ)
