"""PS3.8 Table 9-10 cell by cell, and each action's next state (PS3.8 Tables 9-6 to 9-9)."""

from __future__ import annotations

import pytest

from netdicom.core.errors import AbortReason
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
from netdicom.core.ul.actions import ACTIONS, Action, ActionContext, run_action
from netdicom.core.ul.states import Event, State
from netdicom.core.ul.table import TRANSITIONS

# Written from the standard's Table 9-10, one row per event, columns Sta1..Sta13;
# "." is a blank cell.
GRID = {
    1: "AE-1 .    .    .    .    .    .    .    .    .     .     .     .",
    2: ".    .    .    AE-2 .    .    .    .    .    .     .     .     .",
    3: ".    AA-1 AA-8 .    AE-3 AA-8 AA-8 AA-8 AA-8 AA-8  AA-8  AA-8  AA-6",
    4: ".    AA-1 AA-8 .    AE-4 AA-8 AA-8 AA-8 AA-8 AA-8  AA-8  AA-8  AA-6",
    5: "AE-5 .    .    .    .    .    .    .    .    .     .     .     .",
    6: ".    AE-6 AA-8 .    AA-8 AA-8 AA-8 AA-8 AA-8 AA-8  AA-8  AA-8  AA-7",
    7: ".    .    AE-7 .    .    .    .    .    .    .     .     .     .",
    8: ".    .    AE-8 .    .    .    .    .    .    .     .     .     .",
    9: ".    .    .    .    .    DT-1 .    AR-7 .    .     .     .     .",
    10: ".    AA-1 AA-8 .    AA-8 DT-2 AR-6 AA-8 AA-8 AA-8  AA-8  AA-8  AA-6",
    11: ".    .    .    .    .    AR-1 .    .    .    .     .     .     .",
    12: ".    AA-1 AA-8 .    AA-8 AR-2 AR-8 AA-8 AA-8 AA-8  AA-8  AA-8  AA-6",
    13: ".    AA-1 AA-8 .    AA-8 AA-8 AR-3 AA-8 AA-8 AR-10 AR-3  AA-8  AA-6",
    14: ".    .    .    .    .    .    .    AR-4 AR-9 .     .     AR-4  .",
    15: ".    .    AA-1 AA-2 AA-1 AA-1 AA-1 AA-1 AA-1 AA-1  AA-1  AA-1  .",
    16: ".    AA-2 AA-3 .    AA-3 AA-3 AA-3 AA-3 AA-3 AA-3  AA-3  AA-3  AA-2",
    17: ".    AA-5 AA-4 AA-4 AA-4 AA-4 AA-4 AA-4 AA-4 AA-4  AA-4  AA-4  AR-5",
    18: ".    AA-2 .    .    .    .    .    .    .    .     .     .     AA-2",
    19: ".    AA-1 AA-8 .    AA-8 AA-8 AA-8 AA-8 AA-8 AA-8  AA-8  AA-8  AA-7",
}


def _expected_cells() -> dict[tuple[State, Event], str]:
    cells: dict[tuple[State, Event], str] = {}
    for evt, row in GRID.items():
        names = row.split()
        assert len(names) == 13, f"row Evt{evt} must have 13 columns"
        for sta, name in enumerate(names, start=1):
            if name != ".":
                cells[(State(sta), Event(evt))] = name
    return cells


EXPECTED = _expected_cells()

# Next state of each action, from Tables 9-6..9-9; AE-6 and AR-8 are conditional (below).
NEXT_STATE = {
    "AE-1": State.STA4,
    "AE-2": State.STA5,
    "AE-3": State.STA6,
    "AE-4": State.STA1,
    "AE-5": State.STA2,
    "AE-7": State.STA6,
    "AE-8": State.STA13,
    "DT-1": State.STA6,
    "DT-2": State.STA6,
    "AR-1": State.STA7,
    "AR-2": State.STA8,
    "AR-3": State.STA1,
    "AR-4": State.STA13,
    "AR-5": State.STA1,
    "AR-6": State.STA7,
    "AR-7": State.STA8,
    "AR-9": State.STA11,
    "AR-10": State.STA12,
    "AA-1": State.STA13,
    "AA-2": State.STA1,
    "AA-3": State.STA1,
    "AA-4": State.STA1,
    "AA-5": State.STA1,
    "AA-6": State.STA13,
    "AA-7": State.STA13,
    "AA-8": State.STA13,
}

RQ = AssociateRQ(
    called_ae_title="ANY-SCP",
    calling_ae_title="ANY-SCU",
    presentation_contexts=(),
    user_information=UserInformation(max_length=16384),
)
AC = AssociateAC(
    called_ae_title="ANY-SCP",
    calling_ae_title="ANY-SCU",
    presentation_contexts=(),
    user_information=UserInformation(max_length=16384),
)
PDATA = PDataTF((PresentationDataValue(1, True, True, b"\x00\x00"),))

# A PDU that fits each event (received for remote events, to send for local primitives).
PDU_FOR: dict[Event, PDU | None] = {
    Event.EVT1: RQ,
    Event.EVT3: AC,
    Event.EVT4: AssociateRJ(1, 1, 1),
    Event.EVT6: RQ,
    Event.EVT7: AC,
    Event.EVT8: AssociateRJ(1, 1, 1),
    Event.EVT9: PDATA,
    Event.EVT10: PDATA,
    Event.EVT12: ReleaseRQ(),
    Event.EVT13: ReleaseRP(),
    Event.EVT15: AbortPDU(0, 0),
    Event.EVT16: AbortPDU(2, 0),
}


def test_table_has_exactly_the_cells_of_table_9_10() -> None:
    assert len(EXPECTED) == 123
    actual = {cell: action.value for cell, action in TRANSITIONS.items()}
    missing = sorted(
        (f"{s.name}/{e.name}" for (s, e) in EXPECTED if (s, e) not in actual),
    )
    extra = sorted(f"{s.name}/{e.name}" for (s, e) in actual if (s, e) not in EXPECTED)
    assert missing == []
    assert extra == []
    wrong = {f"{s.name}/{e.name}": (a, EXPECTED[(s, e)]) for (s, e), a in actual.items()}
    wrong = {k: v for k, v in wrong.items() if v[0] != v[1]}
    assert wrong == {}


def test_every_action_is_used_and_has_a_function() -> None:
    assert {a.value for a in TRANSITIONS.values()} == set(NEXT_STATE) | {"AE-6", "AR-8"}
    assert set(ACTIONS) == set(Action)


def _ctx(state: State, event: Event, *, requestor: bool, pdu: PDU | None = None) -> ActionContext:
    return ActionContext(
        state=state,
        event=event,
        requestor=requestor,
        pdu=pdu if pdu is not None else PDU_FOR.get(event),
        abort_reason=AbortReason.UNRECOGNIZED_PDU,
        request=RQ,
    )


def _row_major(cell: tuple[State, Event]) -> tuple[int, int]:
    return (cell[1].value, cell[0].value)


CELLS = sorted(EXPECTED, key=_row_major)


@pytest.mark.parametrize(("state", "event"), CELLS)
def test_cell_leads_to_documented_next_state(state: State, event: Event) -> None:
    name = EXPECTED[(state, event)]
    action = TRANSITIONS[(state, event)]
    if name == "AE-6":
        # Acceptable RQ (bit 0 of protocol-version set) -> Sta3, otherwise RJ -> Sta13.
        ok = run_action(action, _ctx(state, event, requestor=False))
        assert ok.next_state is State.STA3
        bad = AssociateRQ("A", "B", (), UserInformation(max_length=0), protocol_version=2)
        assert run_action(action, _ctx(state, event, requestor=False, pdu=bad)).next_state is (
            State.STA13
        )
    elif name == "AR-8":
        assert run_action(action, _ctx(state, event, requestor=True)).next_state is State.STA9
        assert run_action(action, _ctx(state, event, requestor=False)).next_state is State.STA10
    else:
        for requestor in (True, False):
            result = run_action(action, _ctx(state, event, requestor=requestor))
            assert result.next_state is NEXT_STATE[name], (state, event, name)
