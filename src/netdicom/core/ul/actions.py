"""Actions of the Upper Layer protocol machine (PS3.8 §9.2.2, Tables 9-6 to 9-9).

Each action is a pure function of an `ActionContext`: it returns the next state and the
effects the driver must carry out, in order. Nothing here keeps state; the machine
(machine.py) holds the current state and the A-ASSOCIATE-RQ waiting for AE-2.

Conventions that hold for every action, so the driver can rely on them:
- every transition into STA1 ends with an `Indicate`, so the user always learns why the
  association (or the bare connection) is over;
- `StopArtim` is only emitted when ARTIM is running, which is exactly in STA2 and STA13
  (it is started by AE-5, AE-6 reject, AE-8, AR-4, AA-1 and AA-8, all of which lead there,
  and only AA-6/AA-7 stay in STA13).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import Enum
from types import MappingProxyType
from typing import TypeVar

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
from netdicom.core.records import frozen
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
from netdicom.core.ul.states import Event, State


class Action(Enum):
    """The actions of PS3.8 Tables 9-6 (AE), 9-7 (DT), 9-8 (AR) and 9-9 (AA)."""

    AE_1 = "AE-1"
    AE_2 = "AE-2"
    AE_3 = "AE-3"
    AE_4 = "AE-4"
    AE_5 = "AE-5"
    AE_6 = "AE-6"
    AE_7 = "AE-7"
    AE_8 = "AE-8"
    DT_1 = "DT-1"
    DT_2 = "DT-2"
    AR_1 = "AR-1"
    AR_2 = "AR-2"
    AR_3 = "AR-3"
    AR_4 = "AR-4"
    AR_5 = "AR-5"
    AR_6 = "AR-6"
    AR_7 = "AR-7"
    AR_8 = "AR-8"
    AR_9 = "AR-9"
    AR_10 = "AR-10"
    AA_1 = "AA-1"
    AA_2 = "AA-2"
    AA_3 = "AA-3"
    AA_4 = "AA-4"
    AA_5 = "AA-5"
    AA_6 = "AA-6"
    AA_7 = "AA-7"
    AA_8 = "AA-8"


@frozen
class ActionContext:
    """What an action may look at.

    `pdu` is the received PDU for remote events and the PDU to send for local primitives;
    `request` is the A-ASSOCIATE-RQ kept since EVT1 (AE-2 sends it once TCP is up);
    `abort_reason` is the decoder's verdict carried by EVT19.
    """

    state: State
    event: Event
    requestor: bool
    pdu: PDU | None = None
    abort_reason: AbortReason = AbortReason.NOT_SPECIFIED
    request: AssociateRQ | None = None


@frozen
class Transition:
    """The result of an action: where the machine goes and what the driver must do."""

    next_state: State
    effects: tuple[Effect, ...] = ()


_P = TypeVar("_P")


def _artim_running(state: State) -> bool:
    return state in (State.STA2, State.STA13)


def _provider_abort(ctx: ActionContext) -> AbortPDU:
    # PS3.8 §9.3.8: source 2 = service provider. A PDU that is valid but not allowed in this
    # state is "unexpected-PDU" (reason 2); for EVT19 the decoder told us what was wrong.
    reason = ctx.abort_reason if ctx.event is Event.EVT19 else AbortReason.UNEXPECTED_PDU
    return AbortPDU(source=2, reason=int(reason))


def _need(ctx: ActionContext, kind: type[_P]) -> _P:
    # The machine checks PDU types before calling an action; this guards direct callers.
    if not isinstance(ctx.pdu, kind):
        raise LocalProtocolError(
            f"{ctx.event.name} in {ctx.state.name} needs a {kind.__name__}, got {ctx.pdu!r}"
        )
    return ctx.pdu


# --- Association establishment (PS3.8 Table 9-6) -------------------------------------------


def ae_1(ctx: ActionContext) -> Transition:
    # Issue TRANSPORT CONNECT request; the RQ is kept by the machine until EVT2.
    return Transition(State.STA4, (ConnectTransport(),))


def ae_2(ctx: ActionContext) -> Transition:
    if ctx.request is None:
        raise LocalProtocolError("AE-2: no A-ASSOCIATE-RQ was given with EVT1")
    return Transition(State.STA5, (SendPDU(ctx.request),))


def ae_3(ctx: ActionContext) -> Transition:
    ac = _need(ctx, AssociateAC)
    return Transition(State.STA6, (Indicate(Indication.ASSOCIATE_ACCEPTED, ac),))


def ae_4(ctx: ActionContext) -> Transition:
    rj = _need(ctx, AssociateRJ)
    return Transition(State.STA1, (Indicate(Indication.ASSOCIATE_REJECTED, rj), CloseTransport()))


def ae_5(ctx: ActionContext) -> Transition:
    # The driver has already accepted the connection (the "transport connection response");
    # what is left is to supervise the wait for the A-ASSOCIATE-RQ with ARTIM.
    return Transition(State.STA2, (StartArtim(),))


def ae_6(ctx: ActionContext) -> Transition:
    rq = _need(ctx, AssociateRQ)
    # PS3.8 §9.3.2: a receiver that supports only version 1 tests bit 0 of the
    # protocol-version field and ignores the other bits (so 0x0003 is acceptable).
    if rq.protocol_version & 0x0001:
        return Transition(State.STA3, (StopArtim(), Indicate(Indication.ASSOCIATE_REQUEST, rq)))
    # Not acceptable to the UL provider: rejected-permanent (1), source ACSE service-provider
    # (2), reason protocol-version-not-supported (2) (PS3.8 Table 9-21).
    return Transition(
        State.STA13,
        (StopArtim(), SendPDU(AssociateRJ(result=1, source=2, reason=2)), StartArtim()),
    )


def ae_7(ctx: ActionContext) -> Transition:
    return Transition(State.STA6, (SendPDU(_need(ctx, AssociateAC)),))


def ae_8(ctx: ActionContext) -> Transition:
    return Transition(State.STA13, (SendPDU(_need(ctx, AssociateRJ)), StartArtim()))


# --- Data transfer (PS3.8 Table 9-7) -------------------------------------------------------


def dt_1(ctx: ActionContext) -> Transition:
    return Transition(State.STA6, (SendPDU(_need(ctx, PDataTF)),))


def dt_2(ctx: ActionContext) -> Transition:
    return Transition(State.STA6, (Indicate(Indication.DATA, _need(ctx, PDataTF)),))


# --- Association release (PS3.8 Table 9-8) -------------------------------------------------


def ar_1(ctx: ActionContext) -> Transition:
    return Transition(State.STA7, (SendPDU(ReleaseRQ()),))


def ar_2(ctx: ActionContext) -> Transition:
    rq = _need(ctx, ReleaseRQ)
    return Transition(State.STA8, (Indicate(Indication.RELEASE_REQUEST, rq),))


def ar_3(ctx: ActionContext) -> Transition:
    # The side that sent A-RELEASE-RQ closes the connection once the RP arrives (§9.1.3).
    rp = _need(ctx, ReleaseRP)
    return Transition(State.STA1, (Indicate(Indication.RELEASE_CONFIRMED, rp), CloseTransport()))


def ar_4(ctx: ActionContext) -> Transition:
    # The RP sender waits in STA13 for the peer to close; ARTIM is the backstop.
    return Transition(State.STA13, (SendPDU(ReleaseRP()), StartArtim()))


def ar_5(ctx: ActionContext) -> Transition:
    return Transition(State.STA1, (StopArtim(), Indicate(Indication.TRANSPORT_CLOSED)))


def ar_6(ctx: ActionContext) -> Transition:
    # P-DATA may still arrive while we wait for the A-RELEASE-RP (PS3.8 §7.2.2).
    return Transition(State.STA7, (Indicate(Indication.DATA, _need(ctx, PDataTF)),))


def ar_7(ctx: ActionContext) -> Transition:
    return Transition(State.STA8, (SendPDU(_need(ctx, PDataTF)),))


def ar_8(ctx: ActionContext) -> Transition:
    # Release collision (PS3.8 §9.2.2 Table 9-8): the association-requestor goes to STA9
    # and answers first; the acceptor goes to STA10 and waits for that answer.
    rq = _need(ctx, ReleaseRQ)
    nxt = State.STA9 if ctx.requestor else State.STA10
    return Transition(nxt, (Indicate(Indication.RELEASE_REQUEST, rq),))


def ar_9(ctx: ActionContext) -> Transition:
    return Transition(State.STA11, (SendPDU(ReleaseRP()),))


def ar_10(ctx: ActionContext) -> Transition:
    rp = _need(ctx, ReleaseRP)
    return Transition(State.STA12, (Indicate(Indication.RELEASE_CONFIRMED, rp),))


# --- Association abort (PS3.8 Table 9-9) ---------------------------------------------------


def aa_1(ctx: ActionContext) -> Transition:
    abort: AbortPDU
    if ctx.event is Event.EVT15:
        # The user's A-ABORT request: send its PDU (source 0 unless the user chose otherwise).
        abort = _need(ctx, AbortPDU) if ctx.pdu is not None else AbortPDU(source=0, reason=0)
    else:
        # AA-1 is also the answer to a PDU arriving in STA2 (before any A-ASSOCIATE-RQ) and
        # to EVT19 there. The standard's AA-1 text says source 0 "service-user", but nothing
        # above us asked for this abort: the provider detected the error, so we send source
        # 2 with reason unexpected-PDU (or the decoder's reason for EVT19). pynetdicom and
        # dcmtk behave differently here; we choose provider/2 for clarity.
        abort = _provider_abort(ctx)
    # "Start, or restart if already started, ARTIM": StartArtim always (re)starts it.
    return Transition(State.STA13, (SendPDU(abort), StartArtim()))


def aa_2(ctx: ActionContext) -> Transition:
    effects: list[Effect] = []
    if _artim_running(ctx.state):
        effects.append(StopArtim())
    effects.append(CloseTransport())
    # The PDU that caused it (an A-ABORT received in STA2/STA13) rides along when there is one.
    effects.append(Indicate(Indication.TRANSPORT_CLOSED, ctx.pdu))
    return Transition(State.STA1, tuple(effects))


def aa_3(ctx: ActionContext) -> Transition:
    abort = _need(ctx, AbortPDU)
    # Source 0 is the peer's service user (A-ABORT indication); anything else (2, or the
    # reserved 1) is the peer's provider (A-P-ABORT indication), PS3.8 §9.3.8.
    kind = Indication.ABORT if abort.source == 0 else Indication.PROVIDER_ABORT
    return Transition(State.STA1, (Indicate(kind, abort), CloseTransport()))


def aa_4(ctx: ActionContext) -> Transition:
    # The transport is already gone: nothing to close, only to tell (A-P-ABORT).
    return Transition(State.STA1, (Indicate(Indication.PROVIDER_ABORT),))


def aa_5(ctx: ActionContext) -> Transition:
    return Transition(State.STA1, (StopArtim(), Indicate(Indication.TRANSPORT_CLOSED)))


def aa_6(ctx: ActionContext) -> Transition:
    # Ignore the PDU: the association is already gone, we only wait for the close.
    return Transition(State.STA13)


def aa_7(ctx: ActionContext) -> Transition:
    # Only reached from STA13, where ARTIM is already running: it is not restarted.
    return Transition(State.STA13, (SendPDU(_provider_abort(ctx)),))


def aa_8(ctx: ActionContext) -> Transition:
    abort = _provider_abort(ctx)
    # The A-P-ABORT indication carries a provider reason (PS3.8 §7.4.1); we pass the A-ABORT
    # we sent so the user sees the same source/reason the peer was told.
    return Transition(
        State.STA13,
        (SendPDU(abort), Indicate(Indication.PROVIDER_ABORT, abort), StartArtim()),
    )


ActionFn = Callable[[ActionContext], Transition]

ACTIONS: Mapping[Action, ActionFn] = MappingProxyType(
    {
        Action.AE_1: ae_1,
        Action.AE_2: ae_2,
        Action.AE_3: ae_3,
        Action.AE_4: ae_4,
        Action.AE_5: ae_5,
        Action.AE_6: ae_6,
        Action.AE_7: ae_7,
        Action.AE_8: ae_8,
        Action.DT_1: dt_1,
        Action.DT_2: dt_2,
        Action.AR_1: ar_1,
        Action.AR_2: ar_2,
        Action.AR_3: ar_3,
        Action.AR_4: ar_4,
        Action.AR_5: ar_5,
        Action.AR_6: ar_6,
        Action.AR_7: ar_7,
        Action.AR_8: ar_8,
        Action.AR_9: ar_9,
        Action.AR_10: ar_10,
        Action.AA_1: aa_1,
        Action.AA_2: aa_2,
        Action.AA_3: aa_3,
        Action.AA_4: aa_4,
        Action.AA_5: aa_5,
        Action.AA_6: aa_6,
        Action.AA_7: aa_7,
        Action.AA_8: aa_8,
    }
)


def run_action(action: Action, ctx: ActionContext) -> Transition:
    """Carry out `action` for `ctx` and return the next state and effects."""
    return ACTIONS[action](ctx)
