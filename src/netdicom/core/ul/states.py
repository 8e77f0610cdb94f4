"""States and events of the Upper Layer protocol machine (PS3.8 Tables 9-1..9-5, 9-10)."""

from __future__ import annotations

from enum import Enum


class State(Enum):
    STA1 = 1  # idle
    STA2 = 2  # transport open, awaiting A-ASSOCIATE-RQ (ARTIM running)
    STA3 = 3  # awaiting local A-ASSOCIATE response primitive
    STA4 = 4  # awaiting transport connection to open
    STA5 = 5  # awaiting A-ASSOCIATE-AC or -RJ
    STA6 = 6  # association established, ready for data transfer
    STA7 = 7  # awaiting A-RELEASE-RP
    STA8 = 8  # awaiting local A-RELEASE response primitive
    STA9 = 9  # release collision requestor side: awaiting local A-RELEASE response
    STA10 = 10  # release collision acceptor side: awaiting A-RELEASE-RP
    STA11 = 11  # release collision requestor side: awaiting A-RELEASE-RP
    STA12 = 12  # release collision acceptor side: awaiting local A-RELEASE response
    STA13 = 13  # awaiting transport connection close


class Event(Enum):
    EVT1 = 1  # A-ASSOCIATE request (local user)
    EVT2 = 2  # transport connect confirmation
    EVT3 = 3  # A-ASSOCIATE-AC PDU received
    EVT4 = 4  # A-ASSOCIATE-RJ PDU received
    EVT5 = 5  # transport connection indication
    EVT6 = 6  # A-ASSOCIATE-RQ PDU received
    EVT7 = 7  # A-ASSOCIATE response primitive (accept)
    EVT8 = 8  # A-ASSOCIATE response primitive (reject)
    EVT9 = 9  # P-DATA request primitive
    EVT10 = 10  # P-DATA-TF PDU received
    EVT11 = 11  # A-RELEASE request primitive
    EVT12 = 12  # A-RELEASE-RQ PDU received
    EVT13 = 13  # A-RELEASE-RP PDU received
    EVT14 = 14  # A-RELEASE response primitive
    EVT15 = 15  # A-ABORT request primitive
    EVT16 = 16  # A-ABORT PDU received
    EVT17 = 17  # transport connection closed indication
    EVT18 = 18  # ARTIM timer expired
    EVT19 = 19  # unrecognized or invalid PDU received
