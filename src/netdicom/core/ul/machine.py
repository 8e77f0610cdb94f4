"""The Upper Layer protocol machine (PS3.8 §9.2): table lookup, one action, new state."""

from __future__ import annotations

from netdicom.core.errors import AbortReason, LocalProtocolError
from netdicom.core.pdu.types import (
    PDU,
    AbortPDU,
    AssociateAC,
    AssociateRJ,
    AssociateRQ,
    PDataTF,
    ReleaseRP,
    ReleaseRQ,
)
from netdicom.core.ul.actions import Action, ActionContext, run_action
from netdicom.core.ul.effects import Effect
from netdicom.core.ul.states import Event, State
from netdicom.core.ul.table import TRANSITIONS

# Primitives from our own user or driver (PS3.8 §9.2.1). A missing cell for one of these means
# we misused the machine; every other event comes from the peer, the network or a timer.
_LOCAL_EVENTS = frozenset(
    {
        Event.EVT1,
        Event.EVT2,
        Event.EVT5,
        Event.EVT7,
        Event.EVT8,
        Event.EVT9,
        Event.EVT11,
        Event.EVT14,
        Event.EVT15,
    }
)

# The PDU each event carries: received for remote events, to send for local primitives.
_PDU_TYPE: dict[Event, type[PDU]] = {
    Event.EVT1: AssociateRQ,
    Event.EVT3: AssociateAC,
    Event.EVT4: AssociateRJ,
    Event.EVT6: AssociateRQ,
    Event.EVT7: AssociateAC,
    Event.EVT8: AssociateRJ,
    Event.EVT9: PDataTF,
    Event.EVT10: PDataTF,
    Event.EVT12: ReleaseRQ,
    Event.EVT13: ReleaseRP,
    Event.EVT15: AbortPDU,
    Event.EVT16: AbortPDU,
}
# EVT15 may come without a PDU (AA-1 then sends AbortPDU(0, 0)); EVT19 usually has none,
# since the bytes did not decode, but a decoded-yet-invalid PDU may be passed for context.
_PDU_OPTIONAL = frozenset({Event.EVT15, Event.EVT19})


class StateMachine:
    """One association's Upper Layer state (PS3.8 §9.2), driven by `handle`.

    A requestor goes STA1 -> STA4 with EVT1, an acceptor STA1 -> STA2 with EVT5. `handle`
    returns the effects the driver must carry out, in order. Local primitives (EVT1, 2, 5, 7,
    8, 9, 11, 14, 15) not allowed in the current state raise `LocalProtocolError`; events from
    the peer, the network or ARTIM never raise: where PS3.8 Table 9-10 defines nothing (STA1,
    STA4 before the connection exists, EVT18 outside STA2/STA13) they return [] and leave the
    state as it is.
    """

    __slots__ = ("_last_action", "_request", "_requestor", "_state")

    def __init__(self, *, requestor: bool) -> None:
        self._requestor = requestor
        self._state = State.STA1
        self._request: AssociateRQ | None = None
        self._last_action: Action | None = None

    @property
    def state(self) -> State:
        return self._state

    @property
    def requestor(self) -> bool:
        return self._requestor

    @property
    def is_established(self) -> bool:
        """True in STA6, where P-DATA may flow both ways."""
        return self._state is State.STA6

    @property
    def is_closed(self) -> bool:
        """True in STA1: no association and no transport connection."""
        return self._state is State.STA1

    @property
    def last_action(self) -> Action | None:
        """The action the last `handle` call ran (None if it ran none), for logging."""
        return self._last_action

    def handle(
        self,
        event: Event,
        pdu: PDU | None = None,
        *,
        abort_reason: AbortReason = AbortReason.NOT_SPECIFIED,
    ) -> list[Effect]:
        """Feed one event; return the effects to carry out, in order."""
        self._check_pdu(event, pdu)
        # The role decides AR-8 (PS3.8 Table 9-8), so a machine built for one role must not
        # start the other's way.
        if event is Event.EVT1 and not self._requestor:
            raise LocalProtocolError("EVT1 (A-ASSOCIATE request) on an acceptor machine")
        if event is Event.EVT5 and self._requestor:
            raise LocalProtocolError("EVT5 (transport connection indication) on a requestor")

        self._last_action = None
        action = TRANSITIONS.get((self._state, event))
        if action is None:
            if event in _LOCAL_EVENTS:
                raise LocalProtocolError(
                    f"{event.name} is not allowed in {self._state.name} (PS3.8 Table 9-10)"
                )
            # Nothing defined: in STA1/STA4 there is no connection the event could belong
            # to, and a stray ARTIM expiry is harmless (ACSE timers live above us).
            return []

        if event is Event.EVT1:
            assert isinstance(pdu, AssociateRQ)  # checked by _check_pdu
            self._request = pdu
        ctx = ActionContext(
            state=self._state,
            event=event,
            requestor=self._requestor,
            pdu=pdu,
            abort_reason=abort_reason,
            request=self._request,
        )
        transition = run_action(action, ctx)
        self._last_action = action
        self._state = transition.next_state
        if self._state is State.STA1:
            self._request = None
        return list(transition.effects)

    @staticmethod
    def _check_pdu(event: Event, pdu: PDU | None) -> None:
        expected = _PDU_TYPE.get(event)
        if pdu is None:
            if expected is not None and event not in _PDU_OPTIONAL:
                raise LocalProtocolError(f"{event.name} needs a {expected.__name__}")
            return
        if event is Event.EVT19:
            return
        if expected is None:
            raise LocalProtocolError(f"{event.name} carries no PDU, got {type(pdu).__name__}")
        if not isinstance(pdu, expected):
            raise LocalProtocolError(
                f"{event.name} needs a {expected.__name__}, got {type(pdu).__name__}"
            )
