# mypy narrows `m.state is X` and cannot know that handle() changes the state afterwards.
# mypy: disable-error-code="comparison-overlap"
"""The UL state machine driven the way the transport drives it (PS3.8 §9.2).

Two in-memory peers pass their SendPDU effects to each other as received-PDU events;
ConnectTransport / CloseTransport become EVT2+EVT5 / EVT17 on the other side.
"""

from __future__ import annotations

from collections import deque

import pytest

from netdicom.core.errors import AbortReason, LocalProtocolError
from netdicom.core.pdu.types import (
    PDU,
    AbortPDU,
    AssociateAC,
    AssociateRJ,
    AssociateRQ,
    PDataTF,
    PresentationDataValue,
    ReleaseRP,
    ReleaseRQ,
    UserInformation,
)
from netdicom.core.ul.actions import Action
from netdicom.core.ul.effects import (
    CloseTransport,
    ConnectTransport,
    Effect,
    Indicate,
    Indication,
    SendPDU,
    StartArtim,
    StopArtim,
)
from netdicom.core.ul.machine import StateMachine
from netdicom.core.ul.states import Event, State


def make_rq(version: int = 1) -> AssociateRQ:
    return AssociateRQ(
        called_ae_title="STORESCP",
        calling_ae_title="NETDICOM",
        presentation_contexts=(),
        user_information=UserInformation(max_length=16384),
        protocol_version=version,
    )


RQ = make_rq()
AC = AssociateAC(
    called_ae_title="STORESCP",
    calling_ae_title="NETDICOM",
    presentation_contexts=(),
    user_information=UserInformation(max_length=16384),
)
RJ_USER = AssociateRJ(result=1, source=1, reason=7)  # permanent, user, called AE unknown
DATA_TO_ACC = PDataTF((PresentationDataValue(1, True, True, b"\x01\x02"),))
DATA_TO_REQ = PDataTF((PresentationDataValue(1, False, True, b"\x03\x04"),))

# Which received-PDU event each PDU type raises on the far side (PS3.8 Table 9-10 rows).
RECEIVED = {
    AssociateRQ: Event.EVT6,
    AssociateAC: Event.EVT3,
    AssociateRJ: Event.EVT4,
    PDataTF: Event.EVT10,
    ReleaseRQ: Event.EVT12,
    ReleaseRP: Event.EVT13,
    AbortPDU: Event.EVT16,
}


def kinds(effects: list[Effect]) -> list[Indication]:
    return [e.kind for e in effects if isinstance(e, Indicate)]


class Link:
    """A requestor and an acceptor joined by an in-memory, in-order wire."""

    def __init__(self) -> None:
        self.req = StateMachine(requestor=True)
        self.acc = StateMachine(requestor=False)
        self.wire: deque[tuple[StateMachine, Event, PDU | None]] = deque()
        self.seen: dict[int, list[Effect]] = {id(self.req): [], id(self.acc): []}

    def other(self, m: StateMachine) -> StateMachine:
        return self.acc if m is self.req else self.req

    def local(self, m: StateMachine, event: Event, pdu: PDU | None = None) -> list[Effect]:
        effects = m.handle(event, pdu)
        self._route(m, effects)
        return effects

    def _route(self, m: StateMachine, effects: list[Effect]) -> None:
        self.seen[id(m)].extend(effects)
        far = self.other(m)
        for e in effects:
            if isinstance(e, SendPDU):
                self.wire.append((far, RECEIVED[type(e.pdu)], e.pdu))
            elif isinstance(e, ConnectTransport):
                self.wire.append((far, Event.EVT5, None))
                self.wire.append((m, Event.EVT2, None))
            elif isinstance(e, CloseTransport):
                self.wire.append((far, Event.EVT17, None))

    def pump(self) -> None:
        while self.wire:
            m, event, pdu = self.wire.popleft()
            self._route(m, m.handle(event, pdu))

    def indications(self, m: StateMachine) -> list[Indication]:
        return kinds(self.seen[id(m)])

    def associate(self) -> None:
        self.local(self.req, Event.EVT1, RQ)
        self.pump()
        assert self.acc.state is State.STA3
        self.local(self.acc, Event.EVT7, AC)
        self.pump()
        assert self.req.is_established and self.acc.is_established


# --- whole conversations ------------------------------------------------------------------


def test_association_data_both_ways_and_release() -> None:
    link = Link()
    assert link.req.is_closed and link.acc.is_closed
    assert link.local(link.req, Event.EVT1, RQ) == [ConnectTransport()]
    assert link.req.last_action is Action.AE_1  # -> Sta4
    link.pump()
    # AE-5 then AE-2, AE-6: the acceptor saw the RQ and asks its user.
    assert link.req.state is State.STA5
    assert link.acc.state is State.STA3
    assert link.seen[id(link.acc)] == [
        StartArtim(),
        StopArtim(),
        Indicate(Indication.ASSOCIATE_REQUEST, RQ),
    ]
    assert link.local(link.acc, Event.EVT7, AC) == [SendPDU(AC)]
    link.pump()
    assert link.req.is_established and link.acc.is_established
    assert link.indications(link.req) == [Indication.ASSOCIATE_ACCEPTED]

    assert link.local(link.req, Event.EVT9, DATA_TO_ACC) == [SendPDU(DATA_TO_ACC)]
    assert link.local(link.acc, Event.EVT9, DATA_TO_REQ) == [SendPDU(DATA_TO_REQ)]
    link.pump()
    assert link.seen[id(link.acc)][-1] == Indicate(Indication.DATA, DATA_TO_ACC)
    assert link.seen[id(link.req)][-1] == Indicate(Indication.DATA, DATA_TO_REQ)
    assert link.req.state is State.STA6 and link.acc.state is State.STA6

    assert link.local(link.req, Event.EVT11) == [SendPDU(ReleaseRQ())]
    link.pump()
    assert link.req.state is State.STA7
    assert link.acc.state is State.STA8
    assert link.indications(link.acc)[-1] is Indication.RELEASE_REQUEST
    # P-DATA still flows from the side that received the release request (AR-7, AR-6).
    link.local(link.acc, Event.EVT9, DATA_TO_REQ)
    assert link.acc.state is State.STA8
    link.pump()
    assert link.req.state is State.STA7
    assert link.seen[id(link.req)][-1] == Indicate(Indication.DATA, DATA_TO_REQ)

    assert link.local(link.acc, Event.EVT14) == [SendPDU(ReleaseRP()), StartArtim()]
    assert link.acc.state is State.STA13
    link.pump()
    # AR-3 on the requestor (it closes), then AR-5 on the acceptor when the close arrives.
    assert link.seen[id(link.req)][-2:] == [
        Indicate(Indication.RELEASE_CONFIRMED, ReleaseRP()),
        CloseTransport(),
    ]
    assert link.seen[id(link.acc)][-2:] == [StopArtim(), Indicate(Indication.TRANSPORT_CLOSED)]
    assert link.req.is_closed and link.acc.is_closed


def test_release_collision_walks_both_sides_to_sta1() -> None:
    link = Link()
    link.associate()
    # Both users ask for release before either RQ arrives.
    link.local(link.req, Event.EVT11)
    link.local(link.acc, Event.EVT11)
    assert link.req.last_action is Action.AR_1 and link.acc.last_action is Action.AR_1  # Sta7
    link.pump()
    # AR-8: requestor -> Sta9, acceptor -> Sta10; both indicate A-RELEASE.
    assert link.req.state is State.STA9 and link.req.last_action is Action.AR_8
    assert link.acc.state is State.STA10 and link.acc.last_action is Action.AR_8
    assert link.indications(link.req)[-1] is Indication.RELEASE_REQUEST
    assert link.indications(link.acc)[-1] is Indication.RELEASE_REQUEST
    # Requestor's user answers first (AR-9).
    assert link.local(link.req, Event.EVT14) == [SendPDU(ReleaseRP())]
    assert link.req.state is State.STA11
    link.pump()
    # Acceptor receives that RP (AR-10) -> Sta12 with a release confirmation.
    assert link.acc.state is State.STA12
    assert link.seen[id(link.acc)][-1] == Indicate(Indication.RELEASE_CONFIRMED, ReleaseRP())
    # Acceptor's user answers (AR-4) -> Sta13 with ARTIM.
    assert link.local(link.acc, Event.EVT14) == [SendPDU(ReleaseRP()), StartArtim()]
    assert link.acc.state is State.STA13
    link.pump()
    # Requestor receives RP in Sta11 (AR-3), closes; acceptor sees the close (AR-5).
    assert link.indications(link.req)[-1] is Indication.RELEASE_CONFIRMED
    assert link.req.last_action is Action.AR_3
    assert link.acc.last_action is Action.AR_5
    assert link.req.is_closed and link.acc.is_closed


def test_user_reject() -> None:
    link = Link()
    link.local(link.req, Event.EVT1, RQ)
    link.pump()
    assert link.local(link.acc, Event.EVT8, RJ_USER) == [SendPDU(RJ_USER), StartArtim()]
    assert link.acc.state is State.STA13
    link.pump()
    assert link.seen[id(link.req)][-2:] == [
        Indicate(Indication.ASSOCIATE_REJECTED, RJ_USER),
        CloseTransport(),
    ]
    assert link.acc.last_action is Action.AR_5
    assert link.req.is_closed and link.acc.is_closed


def test_protocol_version_bit_0_set_is_accepted() -> None:
    acc = StateMachine(requestor=False)
    acc.handle(Event.EVT5)
    rq = make_rq(0x0003)
    assert acc.handle(Event.EVT6, rq) == [StopArtim(), Indicate(Indication.ASSOCIATE_REQUEST, rq)]
    assert acc.state is State.STA3


def test_protocol_version_without_bit_0_is_rejected_by_the_provider() -> None:
    link = Link()
    link.local(link.req, Event.EVT1, make_rq(0x0002))
    link.pump()
    # AE-6 reject branch: RJ permanent (1), ACSE provider (2), protocol version (2).
    rj = AssociateRJ(result=1, source=2, reason=2)
    assert link.seen[id(link.acc)][:4] == [StartArtim(), StopArtim(), SendPDU(rj), StartArtim()]
    assert Indication.ASSOCIATE_REQUEST not in link.indications(link.acc)
    assert link.req.is_closed and link.acc.is_closed
    assert link.indications(link.req) == [Indication.ASSOCIATE_REJECTED]
    assert link.indications(link.acc) == [Indication.TRANSPORT_CLOSED]


def test_user_abort_reaches_the_peer_as_a_abort() -> None:
    link = Link()
    link.associate()
    assert link.local(link.req, Event.EVT15) == [SendPDU(AbortPDU(0, 0)), StartArtim()]
    link.pump()
    assert link.seen[id(link.acc)][-2:] == [
        Indicate(Indication.ABORT, AbortPDU(0, 0)),
        CloseTransport(),
    ]
    assert link.req.last_action is Action.AR_5  # the close ends the aborter's Sta13
    assert link.req.is_closed and link.acc.is_closed


def test_invalid_pdu_aborts_both_sides() -> None:
    link = Link()
    link.associate()
    effects = link.acc.handle(Event.EVT19, abort_reason=AbortReason.INVALID_PDU_PARAMETER_VALUE)
    link._route(link.acc, effects)
    link.pump()
    assert link.indications(link.acc)[-2:] == [
        Indication.PROVIDER_ABORT,
        Indication.TRANSPORT_CLOSED,
    ]
    assert link.seen[id(link.req)][-2:] == [
        Indicate(Indication.PROVIDER_ABORT, AbortPDU(2, 6)),
        CloseTransport(),
    ]
    assert link.req.is_closed and link.acc.is_closed


# --- every state ----------------------------------------------------------------------------

# How to walk one machine into each state (requestor?, events with their PDUs).
WALKS: dict[State, tuple[bool, list[tuple[Event, PDU | None]]]] = {
    State.STA1: (True, []),
    State.STA2: (False, [(Event.EVT5, None)]),
    State.STA3: (False, [(Event.EVT5, None), (Event.EVT6, RQ)]),
    State.STA4: (True, [(Event.EVT1, RQ)]),
    State.STA5: (True, [(Event.EVT1, RQ), (Event.EVT2, None)]),
    State.STA6: (True, [(Event.EVT1, RQ), (Event.EVT2, None), (Event.EVT3, AC)]),
}
_ACC6 = [(Event.EVT5, None), (Event.EVT6, RQ), (Event.EVT7, AC)]
WALKS[State.STA7] = (True, [*WALKS[State.STA6][1], (Event.EVT11, None)])
WALKS[State.STA8] = (True, [*WALKS[State.STA6][1], (Event.EVT12, ReleaseRQ())])
WALKS[State.STA9] = (True, [*WALKS[State.STA7][1], (Event.EVT12, ReleaseRQ())])
WALKS[State.STA10] = (False, [*_ACC6, (Event.EVT11, None), (Event.EVT12, ReleaseRQ())])
WALKS[State.STA11] = (True, [*WALKS[State.STA9][1], (Event.EVT14, None)])
WALKS[State.STA12] = (False, [*WALKS[State.STA10][1], (Event.EVT13, ReleaseRP())])
WALKS[State.STA13] = (False, [*WALKS[State.STA3][1], (Event.EVT8, RJ_USER)])


def machine_in(state: State) -> StateMachine:
    requestor, steps = WALKS[state]
    m = StateMachine(requestor=requestor)
    for event, pdu in steps:
        m.handle(event, pdu)
    assert m.state is state
    return m


ALL = list(State)
ASSOCIATION_STATES = [State(n) for n in (3, 5, 6, 7, 8, 9, 10, 11, 12)]


def test_walks_reach_every_state() -> None:
    assert set(WALKS) == set(State)


@pytest.mark.parametrize("state", ASSOCIATION_STATES)
def test_user_abort_in_each_state(state: State) -> None:
    m = machine_in(state)
    assert m.handle(Event.EVT15) == [SendPDU(AbortPDU(0, 0)), StartArtim()]
    assert m.state is State.STA13 and m.last_action is Action.AA_1
    # The user may supply its own A-ABORT PDU; it is sent as it is.
    m2 = machine_in(state)
    assert m2.handle(Event.EVT15, AbortPDU(0, 0))[0] == SendPDU(AbortPDU(0, 0))


def test_user_abort_while_connecting_just_closes() -> None:
    m = machine_in(State.STA4)
    # AA-2: ARTIM is not running in Sta4, so no StopArtim.
    assert m.handle(Event.EVT15) == [CloseTransport(), Indicate(Indication.TRANSPORT_CLOSED)]
    assert m.is_closed


@pytest.mark.parametrize("state", [State.STA1, State.STA2, State.STA13])
def test_user_abort_where_table_has_no_cell_raises(state: State) -> None:
    m = machine_in(state)
    with pytest.raises(LocalProtocolError):
        m.handle(Event.EVT15)
    assert m.state is state


@pytest.mark.parametrize("state", ASSOCIATION_STATES)
@pytest.mark.parametrize(
    ("source", "kind"), [(0, Indication.ABORT), (2, Indication.PROVIDER_ABORT)]
)
def test_peer_abort_in_each_state(state: State, source: int, kind: Indication) -> None:
    m = machine_in(state)
    abort = AbortPDU(source, 0 if source == 0 else 1)
    assert m.handle(Event.EVT16, abort) == [Indicate(kind, abort), CloseTransport()]
    assert m.is_closed and m.last_action is Action.AA_3


@pytest.mark.parametrize("state", [State.STA2, State.STA13])
def test_peer_abort_without_association_closes(state: State) -> None:
    m = machine_in(state)
    abort = AbortPDU(2, 0)
    assert m.handle(Event.EVT16, abort) == [
        StopArtim(),
        CloseTransport(),
        Indicate(Indication.TRANSPORT_CLOSED, abort),
    ]
    assert m.is_closed


@pytest.mark.parametrize("state", [*ASSOCIATION_STATES, State.STA4])
def test_transport_drop_in_each_association_state(state: State) -> None:
    m = machine_in(state)
    assert m.handle(Event.EVT17) == [Indicate(Indication.PROVIDER_ABORT)]
    assert m.is_closed and m.last_action is Action.AA_4


def test_transport_drop_before_rq() -> None:
    m = machine_in(State.STA2)
    assert m.handle(Event.EVT17) == [StopArtim(), Indicate(Indication.TRANSPORT_CLOSED)]
    assert m.is_closed and m.last_action is Action.AA_5


@pytest.mark.parametrize("state", ALL)
def test_evt19_in_each_state(state: State) -> None:
    m = machine_in(state)
    reason = AbortReason.UNRECOGNIZED_PDU_PARAMETER
    effects = m.handle(Event.EVT19, abort_reason=reason)
    abort = AbortPDU(source=2, reason=4)
    if state in (State.STA1, State.STA4):
        # No connection the bytes could have come from: nothing defined, nothing done.
        assert effects == [] and m.state is state
    elif state is State.STA2:
        assert effects == [SendPDU(abort), StartArtim()]  # AA-1, provider source
        assert m.state is State.STA13
    elif state is State.STA13:
        assert effects == [SendPDU(abort)]  # AA-7: ARTIM already running
        assert m.state is State.STA13
    else:
        assert effects == [SendPDU(abort), Indicate(Indication.PROVIDER_ABORT, abort), StartArtim()]
        assert m.state is State.STA13 and m.last_action is Action.AA_8


@pytest.mark.parametrize("state", [State.STA3, State.STA5, State.STA8, State.STA12])
def test_unexpected_pdu_aborts_with_reason_2(state: State) -> None:
    m = machine_in(state)
    effects = m.handle(Event.EVT10, DATA_TO_ACC)
    assert effects[0] == SendPDU(AbortPDU(source=2, reason=2))
    assert m.state is State.STA13


def test_pdu_before_rq_is_a_provider_abort() -> None:
    m = machine_in(State.STA2)
    # AA-1 for a P-DATA before association: we send source 2 / unexpected-PDU (see actions).
    assert m.handle(Event.EVT10, DATA_TO_ACC) == [SendPDU(AbortPDU(2, 2)), StartArtim()]
    assert m.state is State.STA13


@pytest.mark.parametrize(
    ("event", "pdu"),
    [
        (Event.EVT3, AC),
        (Event.EVT4, RJ_USER),
        (Event.EVT10, DATA_TO_ACC),
        (Event.EVT12, ReleaseRQ()),
        (Event.EVT13, ReleaseRP()),
    ],
)
def test_pdus_in_sta13_are_ignored(event: Event, pdu: PDU) -> None:
    m = machine_in(State.STA13)
    assert m.handle(event, pdu) == []
    assert m.state is State.STA13 and m.last_action is Action.AA_6


def test_rq_in_sta13_is_answered_with_abort() -> None:
    m = machine_in(State.STA13)
    assert m.handle(Event.EVT6, RQ) == [SendPDU(AbortPDU(2, 2))]
    assert m.state is State.STA13 and m.last_action is Action.AA_7


@pytest.mark.parametrize("state", [State.STA2, State.STA13])
def test_artim_expiry(state: State) -> None:
    m = machine_in(state)
    assert m.handle(Event.EVT18) == [
        StopArtim(),
        CloseTransport(),
        Indicate(Indication.TRANSPORT_CLOSED),
    ]
    assert m.is_closed and m.last_action is Action.AA_2


@pytest.mark.parametrize("state", [s for s in ALL if s not in (State.STA2, State.STA13)])
def test_artim_expiry_elsewhere_does_nothing(state: State) -> None:
    m = machine_in(state)
    assert m.handle(Event.EVT18) == []
    assert m.state is state and m.last_action is None


@pytest.mark.parametrize(
    ("event", "pdu"),
    [
        (Event.EVT3, AC),
        (Event.EVT6, RQ),
        (Event.EVT10, DATA_TO_ACC),
        (Event.EVT16, AbortPDU()),
        (Event.EVT17, None),
        (Event.EVT19, None),
    ],
)
def test_remote_events_in_sta1_do_nothing(event: Event, pdu: PDU | None) -> None:
    m = StateMachine(requestor=False)
    assert m.handle(event, pdu) == []
    assert m.is_closed


# --- local misuse -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "event", "pdu"),
    [
        (State.STA5, Event.EVT9, DATA_TO_ACC),  # P-DATA before the AC
        (State.STA7, Event.EVT11, None),  # release twice
        (State.STA6, Event.EVT14, None),  # release response nobody asked for
        (State.STA6, Event.EVT7, AC),  # accept twice
        (State.STA4, Event.EVT1, RQ),  # associate twice
        (State.STA2, Event.EVT8, RJ_USER),  # reject before the RQ arrived
        (State.STA1, Event.EVT2, None),  # connect confirmation out of the blue
        (State.STA1, Event.EVT9, DATA_TO_ACC),
    ],
)
def test_local_primitive_without_cell_raises(state: State, event: Event, pdu: PDU | None) -> None:
    m = machine_in(state)
    with pytest.raises(LocalProtocolError):
        m.handle(event, pdu)
    assert m.state is state


def test_role_mismatch_raises() -> None:
    with pytest.raises(LocalProtocolError):
        StateMachine(requestor=False).handle(Event.EVT1, RQ)
    with pytest.raises(LocalProtocolError):
        StateMachine(requestor=True).handle(Event.EVT5)


@pytest.mark.parametrize(
    ("state", "event", "pdu"),
    [
        (State.STA6, Event.EVT9, ReleaseRQ()),  # wrong PDU type for P-DATA
        (State.STA6, Event.EVT10, None),  # a received P-DATA without the PDU
        (State.STA6, Event.EVT11, ReleaseRQ()),  # the machine builds A-RELEASE-RQ itself
        (State.STA1, Event.EVT1, None),  # A-ASSOCIATE request without its RQ
        (State.STA3, Event.EVT7, RJ_USER),  # accept with a reject PDU
    ],
)
def test_wrong_pdu_for_event_raises(state: State, event: Event, pdu: PDU | None) -> None:
    m = machine_in(state)
    with pytest.raises(LocalProtocolError):
        m.handle(event, pdu)
    assert m.state is state


def test_machine_can_associate_again_after_sta1() -> None:
    link = Link()
    link.associate()
    link.local(link.req, Event.EVT11)
    link.pump()
    link.local(link.acc, Event.EVT14)
    link.pump()
    assert link.req.is_closed
    assert link.req.handle(Event.EVT1, RQ) == [ConnectTransport()]
    assert link.req.handle(Event.EVT2) == [SendPDU(RQ)]
