"""PS3.8 Table 9-10, the Upper Layer state transition table, as one literal mapping.

Ordered by event (the table's rows), then state. A (state, event) pair that is absent has no
action in the standard; machine.py decides what that means.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from netdicom.core.ul.actions import Action
from netdicom.core.ul.states import Event, State

TRANSITIONS: Mapping[tuple[State, Event], Action] = MappingProxyType(
    {
        # EVT1
        (State.STA1, Event.EVT1): Action.AE_1,
        # EVT2
        (State.STA4, Event.EVT2): Action.AE_2,
        # EVT3
        (State.STA2, Event.EVT3): Action.AA_1,
        (State.STA3, Event.EVT3): Action.AA_8,
        (State.STA5, Event.EVT3): Action.AE_3,
        (State.STA6, Event.EVT3): Action.AA_8,
        (State.STA7, Event.EVT3): Action.AA_8,
        (State.STA8, Event.EVT3): Action.AA_8,
        (State.STA9, Event.EVT3): Action.AA_8,
        (State.STA10, Event.EVT3): Action.AA_8,
        (State.STA11, Event.EVT3): Action.AA_8,
        (State.STA12, Event.EVT3): Action.AA_8,
        (State.STA13, Event.EVT3): Action.AA_6,
        # EVT4
        (State.STA2, Event.EVT4): Action.AA_1,
        (State.STA3, Event.EVT4): Action.AA_8,
        (State.STA5, Event.EVT4): Action.AE_4,
        (State.STA6, Event.EVT4): Action.AA_8,
        (State.STA7, Event.EVT4): Action.AA_8,
        (State.STA8, Event.EVT4): Action.AA_8,
        (State.STA9, Event.EVT4): Action.AA_8,
        (State.STA10, Event.EVT4): Action.AA_8,
        (State.STA11, Event.EVT4): Action.AA_8,
        (State.STA12, Event.EVT4): Action.AA_8,
        (State.STA13, Event.EVT4): Action.AA_6,
        # EVT5
        (State.STA1, Event.EVT5): Action.AE_5,
        # EVT6
        (State.STA2, Event.EVT6): Action.AE_6,
        (State.STA3, Event.EVT6): Action.AA_8,
        (State.STA5, Event.EVT6): Action.AA_8,
        (State.STA6, Event.EVT6): Action.AA_8,
        (State.STA7, Event.EVT6): Action.AA_8,
        (State.STA8, Event.EVT6): Action.AA_8,
        (State.STA9, Event.EVT6): Action.AA_8,
        (State.STA10, Event.EVT6): Action.AA_8,
        (State.STA11, Event.EVT6): Action.AA_8,
        (State.STA12, Event.EVT6): Action.AA_8,
        (State.STA13, Event.EVT6): Action.AA_7,
        # EVT7
        (State.STA3, Event.EVT7): Action.AE_7,
        # EVT8
        (State.STA3, Event.EVT8): Action.AE_8,
        # EVT9
        (State.STA6, Event.EVT9): Action.DT_1,
        (State.STA8, Event.EVT9): Action.AR_7,
        # EVT10
        (State.STA2, Event.EVT10): Action.AA_1,
        (State.STA3, Event.EVT10): Action.AA_8,
        (State.STA5, Event.EVT10): Action.AA_8,
        (State.STA6, Event.EVT10): Action.DT_2,
        (State.STA7, Event.EVT10): Action.AR_6,
        (State.STA8, Event.EVT10): Action.AA_8,
        (State.STA9, Event.EVT10): Action.AA_8,
        (State.STA10, Event.EVT10): Action.AA_8,
        (State.STA11, Event.EVT10): Action.AA_8,
        (State.STA12, Event.EVT10): Action.AA_8,
        (State.STA13, Event.EVT10): Action.AA_6,
        # EVT11
        (State.STA6, Event.EVT11): Action.AR_1,
        # EVT12
        (State.STA2, Event.EVT12): Action.AA_1,
        (State.STA3, Event.EVT12): Action.AA_8,
        (State.STA5, Event.EVT12): Action.AA_8,
        (State.STA6, Event.EVT12): Action.AR_2,
        (State.STA7, Event.EVT12): Action.AR_8,
        (State.STA8, Event.EVT12): Action.AA_8,
        (State.STA9, Event.EVT12): Action.AA_8,
        (State.STA10, Event.EVT12): Action.AA_8,
        (State.STA11, Event.EVT12): Action.AA_8,
        (State.STA12, Event.EVT12): Action.AA_8,
        (State.STA13, Event.EVT12): Action.AA_6,
        # EVT13
        (State.STA2, Event.EVT13): Action.AA_1,
        (State.STA3, Event.EVT13): Action.AA_8,
        (State.STA5, Event.EVT13): Action.AA_8,
        (State.STA6, Event.EVT13): Action.AA_8,
        (State.STA7, Event.EVT13): Action.AR_3,
        (State.STA8, Event.EVT13): Action.AA_8,
        (State.STA9, Event.EVT13): Action.AA_8,
        (State.STA10, Event.EVT13): Action.AR_10,
        (State.STA11, Event.EVT13): Action.AR_3,
        (State.STA12, Event.EVT13): Action.AA_8,
        (State.STA13, Event.EVT13): Action.AA_6,
        # EVT14
        (State.STA8, Event.EVT14): Action.AR_4,
        (State.STA9, Event.EVT14): Action.AR_9,
        (State.STA12, Event.EVT14): Action.AR_4,
        # EVT15
        (State.STA3, Event.EVT15): Action.AA_1,
        (State.STA4, Event.EVT15): Action.AA_2,
        (State.STA5, Event.EVT15): Action.AA_1,
        (State.STA6, Event.EVT15): Action.AA_1,
        (State.STA7, Event.EVT15): Action.AA_1,
        (State.STA8, Event.EVT15): Action.AA_1,
        (State.STA9, Event.EVT15): Action.AA_1,
        (State.STA10, Event.EVT15): Action.AA_1,
        (State.STA11, Event.EVT15): Action.AA_1,
        (State.STA12, Event.EVT15): Action.AA_1,
        # EVT16
        (State.STA2, Event.EVT16): Action.AA_2,
        (State.STA3, Event.EVT16): Action.AA_3,
        (State.STA5, Event.EVT16): Action.AA_3,
        (State.STA6, Event.EVT16): Action.AA_3,
        (State.STA7, Event.EVT16): Action.AA_3,
        (State.STA8, Event.EVT16): Action.AA_3,
        (State.STA9, Event.EVT16): Action.AA_3,
        (State.STA10, Event.EVT16): Action.AA_3,
        (State.STA11, Event.EVT16): Action.AA_3,
        (State.STA12, Event.EVT16): Action.AA_3,
        (State.STA13, Event.EVT16): Action.AA_2,
        # EVT17
        (State.STA2, Event.EVT17): Action.AA_5,
        (State.STA3, Event.EVT17): Action.AA_4,
        (State.STA4, Event.EVT17): Action.AA_4,
        (State.STA5, Event.EVT17): Action.AA_4,
        (State.STA6, Event.EVT17): Action.AA_4,
        (State.STA7, Event.EVT17): Action.AA_4,
        (State.STA8, Event.EVT17): Action.AA_4,
        (State.STA9, Event.EVT17): Action.AA_4,
        (State.STA10, Event.EVT17): Action.AA_4,
        (State.STA11, Event.EVT17): Action.AA_4,
        (State.STA12, Event.EVT17): Action.AA_4,
        (State.STA13, Event.EVT17): Action.AR_5,
        # EVT18
        (State.STA2, Event.EVT18): Action.AA_2,
        (State.STA13, Event.EVT18): Action.AA_2,
        # EVT19
        (State.STA2, Event.EVT19): Action.AA_1,
        (State.STA3, Event.EVT19): Action.AA_8,
        (State.STA5, Event.EVT19): Action.AA_8,
        (State.STA6, Event.EVT19): Action.AA_8,
        (State.STA7, Event.EVT19): Action.AA_8,
        (State.STA8, Event.EVT19): Action.AA_8,
        (State.STA9, Event.EVT19): Action.AA_8,
        (State.STA10, Event.EVT19): Action.AA_8,
        (State.STA11, Event.EVT19): Action.AA_8,
        (State.STA12, Event.EVT19): Action.AA_8,
        (State.STA13, Event.EVT19): Action.AA_7,
    }
)
