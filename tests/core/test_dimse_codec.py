"""Command set codec: hand-written vectors (PS3.7 Annex E, Implicit VR LE), leniency, errors."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netdicom.core.dimse.codec import (
    UnknownCommand,
    decode_command,
    encode_command,
    encode_unsupported_response,
)
from netdicom.core.dimse.messages import (
    CCancelRQ,
    CEchoRQ,
    CEchoRSP,
    CFindRQ,
    CFindRSP,
    CGetRQ,
    CGetRSP,
    CMoveRQ,
    CMoveRSP,
    CommandField,
    CStoreRQ,
    CStoreRSP,
    DimseMessage,
    Priority,
    UnsupportedCommand,
)
from netdicom.core.errors import AbortReason, LocalProtocolError, RemoteProtocolError

# Each element: tag group (2 bytes LE), tag element (2 bytes LE), value length (4 bytes LE),
# value. Group length (0000,0000) counts the bytes of every element after it.

# C-ECHO-RQ the way dcmtk's echoscu and pynetdicom send it (Message ID 1).
ECHO_RQ = (
    b"\x00\x00\x00\x00"
    b"\x04\x00\x00\x00"
    b"\x38\x00\x00\x00"  # (0000,0000) UL 4: 56
    b"\x00\x00\x02\x00"
    b"\x12\x00\x00\x00"
    b"1.2.840.10008.1.1\x00"  # (0000,0002) UI 18
    b"\x00\x00\x00\x01"
    b"\x02\x00\x00\x00"
    b"\x30\x00"  # (0000,0100) US 2: 0x0030 C-ECHO-RQ
    b"\x00\x00\x10\x01"
    b"\x02\x00\x00\x00"
    b"\x01\x00"  # (0000,0110) US 2: Message ID 1
    b"\x00\x00\x00\x08"
    b"\x02\x00\x00\x00"
    b"\x01\x01"  # (0000,0800) US 2: 0x0101 no data set
)

# C-ECHO-RSP answering Message ID 1 with Success.
ECHO_RSP = (
    b"\x00\x00\x00\x00"
    b"\x04\x00\x00\x00"
    b"\x42\x00\x00\x00"  # (0000,0000) UL 4: 66
    b"\x00\x00\x02\x00"
    b"\x12\x00\x00\x00"
    b"1.2.840.10008.1.1\x00"  # (0000,0002) UI 18
    b"\x00\x00\x00\x01"
    b"\x02\x00\x00\x00"
    b"\x30\x80"  # (0000,0100) US: 0x8030 C-ECHO-RSP
    b"\x00\x00\x20\x01"
    b"\x02\x00\x00\x00"
    b"\x01\x00"  # (0000,0120) US: responding to 1
    b"\x00\x00\x00\x08"
    b"\x02\x00\x00\x00"
    b"\x01\x01"  # (0000,0800) US: 0x0101 no data set
    b"\x00\x00\x00\x09"
    b"\x02\x00\x00\x00"
    b"\x00\x00"  # (0000,0900) US: status 0x0000
)

# C-STORE-RQ, a C-MOVE sub-operation: odd-length UIDs get a NUL, the odd AE title a space.
STORE_RQ = (
    b"\x00\x00\x00\x00"
    b"\x04\x00\x00\x00"
    b"\x74\x00\x00\x00"  # (0000,0000) UL 4: 116
    b"\x00\x00\x02\x00"
    b"\x1a\x00\x00\x00"  # (0000,0002) UI 26: CT Image Storage + NUL
    b"1.2.840.10008.5.1.4.1.1.2\x00"
    b"\x00\x00\x00\x01"
    b"\x02\x00\x00\x00"
    b"\x01\x00"  # (0000,0100) US: 0x0001 C-STORE-RQ
    b"\x00\x00\x10\x01"
    b"\x02\x00\x00\x00"
    b"\x07\x00"  # (0000,0110) US: Message ID 7
    b"\x00\x00\x00\x07"
    b"\x02\x00\x00\x00"
    b"\x02\x00"  # (0000,0700) US: priority 2 LOW
    b"\x00\x00\x00\x08"
    b"\x02\x00\x00\x00"
    b"\x01\x00"  # (0000,0800) US: 0x0001 data set
    b"\x00\x00\x00\x10"
    b"\x08\x00\x00\x00"
    b"1.2.3.4\x00"  # (0000,1000) UI 8: instance UID
    b"\x00\x00\x30\x10"
    b"\x08\x00\x00\x00"
    b"MOVESCU "  # (0000,1030) AE 8: move originator
    b"\x00\x00\x31\x10"
    b"\x02\x00\x00\x00"
    b"\x03\x00"  # (0000,1031) US: originator msg 3
)

# C-FIND-RSP failure with Offending Element and Error Comment.
FIND_RSP_FAILURE = (
    b"\x00\x00\x00\x00"
    b"\x04\x00\x00\x00"
    b"\x4a\x00\x00\x00"  # (0000,0000) UL 4: 74
    b"\x00\x00\x00\x01"
    b"\x02\x00\x00\x00"
    b"\x20\x80"  # (0000,0100) US: 0x8020 C-FIND-RSP
    b"\x00\x00\x20\x01"
    b"\x02\x00\x00\x00"
    b"\x05\x00"  # (0000,0120) US: responding to 5
    b"\x00\x00\x00\x08"
    b"\x02\x00\x00\x00"
    b"\x01\x01"  # (0000,0800) US: no data set
    b"\x00\x00\x00\x09"
    b"\x02\x00\x00\x00"
    b"\x00\xa9"  # (0000,0900) US: status 0xA900
    b"\x00\x00\x01\x09"
    b"\x08\x00\x00\x00"  # (0000,0901) AT 8: two tags
    b"\x10\x00\x10\x00"
    b"\x08\x00\x52\x00"  # (0010,0010), (0008,0052)
    b"\x00\x00\x02\x09"
    b"\x0a\x00\x00\x00"
    b"bad level "  # (0000,0902) LO 10: "bad level"
)

# C-MOVE-RQ to destination "ARCHIVE" at high priority, identifier follows.
MOVE_RQ = (
    b"\x00\x00\x00\x00"
    b"\x04\x00\x00\x00"
    b"\x5c\x00\x00\x00"  # (0000,0000) UL 4: 92
    b"\x00\x00\x02\x00"
    b"\x1c\x00\x00\x00"  # (0000,0002) UI 28: Study Root MOVE (27) + NUL
    b"1.2.840.10008.5.1.4.1.2.2.2\x00"
    b"\x00\x00\x00\x01"
    b"\x02\x00\x00\x00"
    b"\x21\x00"  # (0000,0100) US: 0x0021 C-MOVE-RQ
    b"\x00\x00\x10\x01"
    b"\x02\x00\x00\x00"
    b"\x09\x00"  # (0000,0110) US: Message ID 9
    b"\x00\x00\x00\x06"
    b"\x08\x00\x00\x00"
    b"ARCHIVE "  # (0000,0600) AE 8: move destination
    b"\x00\x00\x00\x07"
    b"\x02\x00\x00\x00"
    b"\x01\x00"  # (0000,0700) US: priority 1 HIGH
    b"\x00\x00\x00\x08"
    b"\x02\x00\x00\x00"
    b"\x01\x00"  # (0000,0800) US: data set follows
)

# C-GET-RSP pending with the four sub-operation counts.
GET_RSP_PENDING = (
    b"\x00\x00\x00\x00"
    b"\x04\x00\x00\x00"
    b"\x74\x00\x00\x00"  # (0000,0000) UL 4: 116
    b"\x00\x00\x02\x00"
    b"\x1c\x00\x00\x00"  # (0000,0002) UI 28: Study Root GET (27) + NUL
    b"1.2.840.10008.5.1.4.1.2.2.3\x00"
    b"\x00\x00\x00\x01"
    b"\x02\x00\x00\x00"
    b"\x10\x80"  # (0000,0100) US: 0x8010 C-GET-RSP
    b"\x00\x00\x20\x01"
    b"\x02\x00\x00\x00"
    b"\x02\x00"  # (0000,0120) US: responding to 2
    b"\x00\x00\x00\x08"
    b"\x02\x00\x00\x00"
    b"\x01\x01"  # (0000,0800) US: no data set
    b"\x00\x00\x00\x09"
    b"\x02\x00\x00\x00"
    b"\x00\xff"  # (0000,0900) US: 0xFF00 pending
    b"\x00\x00\x20\x10"
    b"\x02\x00\x00\x00"
    b"\x04\x00"  # (0000,1020) US: 4 remaining
    b"\x00\x00\x21\x10"
    b"\x02\x00\x00\x00"
    b"\x03\x00"  # (0000,1021) US: 3 completed
    b"\x00\x00\x22\x10"
    b"\x02\x00\x00\x00"
    b"\x01\x00"  # (0000,1022) US: 1 failed
    b"\x00\x00\x23\x10"
    b"\x02\x00\x00\x00"
    b"\x00\x00"  # (0000,1023) US: 0 warning
)

# C-CANCEL-RQ for Message ID 5: only Message ID Being Responded To (PS3.7 §9.3.2.3).
CANCEL_RQ = (
    b"\x00\x00\x00\x00"
    b"\x04\x00\x00\x00"
    b"\x1e\x00\x00\x00"  # (0000,0000) UL 4: 30
    b"\x00\x00\x00\x01"
    b"\x02\x00\x00\x00"
    b"\xff\x0f"  # (0000,0100) US: 0x0FFF C-CANCEL-RQ
    b"\x00\x00\x20\x01"
    b"\x02\x00\x00\x00"
    b"\x05\x00"  # (0000,0120) US: cancels 5
    b"\x00\x00\x00\x08"
    b"\x02\x00\x00\x00"
    b"\x01\x01"  # (0000,0800) US: no data set
)

VECTORS: list[tuple[bytes, DimseMessage]] = [
    (ECHO_RQ, CEchoRQ(message_id=1)),
    (ECHO_RSP, CEchoRSP(1, 0x0000, affected_sop_class_uid="1.2.840.10008.1.1")),
    (
        STORE_RQ,
        CStoreRQ(
            7,
            "1.2.840.10008.5.1.4.1.1.2",
            "1.2.3.4",
            priority=Priority.LOW,
            move_originator_ae_title="MOVESCU",
            move_originator_message_id=3,
        ),
    ),
    (
        FIND_RSP_FAILURE,
        CFindRSP(5, 0xA900, offending_element=(0x00100010, 0x00080052), error_comment="bad level"),
    ),
    (
        MOVE_RQ,
        CMoveRQ(9, "1.2.840.10008.5.1.4.1.2.2.2", "ARCHIVE", priority=Priority.HIGH),
    ),
    (
        GET_RSP_PENDING,
        CGetRSP(
            2,
            0xFF00,
            affected_sop_class_uid="1.2.840.10008.5.1.4.1.2.2.3",
            number_of_remaining_suboperations=4,
            number_of_completed_suboperations=3,
            number_of_failed_suboperations=1,
            number_of_warning_suboperations=0,
        ),
    ),
    (CANCEL_RQ, CCancelRQ(5)),
]


@pytest.mark.parametrize(("vector", "message"), VECTORS, ids=lambda v: type(v).__name__)
def test_encode_matches_hand_vector(vector: bytes, message: DimseMessage) -> None:
    assert encode_command(message) == vector


@pytest.mark.parametrize(("vector", "message"), VECTORS, ids=lambda v: type(v).__name__)
def test_decode_hand_vector(vector: bytes, message: DimseMessage) -> None:
    assert decode_command(vector) == message
    assert decode_command(memoryview(vector)) == message


def test_defaults_for_has_dataset() -> None:
    assert CStoreRQ(1, "1.2", "1.2.3").has_dataset
    assert CFindRQ(1, "1.2").has_dataset
    assert CGetRQ(1, "1.2").has_dataset
    assert CMoveRQ(1, "1.2", "DEST").has_dataset
    for msg in (CEchoRQ(1), CEchoRSP(1, 0), CStoreRSP(1, 0), CFindRSP(1, 0), CGetRSP(1, 0)):
        assert not msg.has_dataset
    assert not CMoveRSP(1, 0).has_dataset
    assert not CCancelRQ(1).has_dataset


def test_pending_find_response_announces_identifier() -> None:
    encoded = encode_command(CFindRSP(3, 0xFF00, has_dataset=True))
    # (0000,0800) US 2 with 0x0001: a data set follows.
    assert b"\x00\x00\x00\x08\x02\x00\x00\x00\x01\x00" in encoded
    assert decode_command(encoded).has_dataset


# A C-ECHO-RQ as an old or odd peer may send it: group length wrong (0x99), the retired
# Length to End (0000,0001), the UID padded with a space, the retired (0000,4000), and
# Data Set Type 0x0102 (ACR-NEMA style "present").
LENIENT_ECHO_RQ = (
    b"\x00\x00\x00\x00"
    b"\x04\x00\x00\x00"
    b"\x99\x00\x00\x00"  # (0000,0000) UL: 153 (wrong)
    b"\x00\x00\x01\x00"
    b"\x04\x00\x00\x00"
    b"\x00\x00\x00\x00"  # (0000,0001) UL retired
    b"\x00\x00\x02\x00"
    b"\x12\x00\x00\x00"
    b"1.2.840.10008.1.1 "  # (0000,0002) UI, space pad
    b"\x00\x00\x00\x01"
    b"\x02\x00\x00\x00"
    b"\x30\x00"  # (0000,0100) US: C-ECHO-RQ
    b"\x00\x00\x10\x01"
    b"\x02\x00\x00\x00"
    b"\x2a\x00"  # (0000,0110) US: Message ID 42
    b"\x00\x00\x00\x08"
    b"\x02\x00\x00\x00"
    b"\x02\x01"  # (0000,0800) US: 0x0102
    b"\x00\x00\x00\x40"
    b"\x02\x00\x00\x00"
    b"AB"  # (0000,4000) retired, 2 bytes
)


def test_decode_is_lenient() -> None:
    msg = decode_command(LENIENT_ECHO_RQ)
    assert msg == CEchoRQ(42, "1.2.840.10008.1.1", has_dataset=True)


def test_decode_strips_padding_and_unordered_elements() -> None:
    vector = (
        b"\x00\x00\x00\x01"
        b"\x02\x00\x00\x00"
        b"\x21\x00"  # (0000,0100) US: C-MOVE-RQ
        b"\x00\x00\x00\x06"
        b"\x10\x00\x00\x00"
        b"  DEST          "  # (0000,0600) AE 16
        b"\x00\x00\x02\x00"
        b"\x04\x00\x00\x00"
        b"1.2\x00"  # (0000,0002) UI 4
        b"\x00\x00\x10\x01"
        b"\x02\x00\x00\x00"
        b"\x01\x00"  # (0000,0110) US: 1
        b"\x00\x00\x00\x08"
        b"\x02\x00\x00\x00"
        b"\x00\x00"  # (0000,0800) US: 0x0000
    )  # no group length, no priority: both tolerated
    assert decode_command(vector) == CMoveRQ(1, "1.2", "DEST", priority=Priority.MEDIUM)


# N-ACTION-RQ (0x0130): Requested SOP Class UID, Message ID 11, action information follows.
N_ACTION_RQ = (
    b"\x00\x00\x00\x00"
    b"\x04\x00\x00\x00"
    b"\x44\x00\x00\x00"  # (0000,0000) UL: 68
    b"\x00\x00\x03\x00"
    b"\x14\x00\x00\x00"
    b"1.2.840.10008.1.20.1"  # (0000,0003) UI 20
    b"\x00\x00\x00\x01"
    b"\x02\x00\x00\x00"
    b"\x30\x01"  # (0000,0100) US: 0x0130
    b"\x00\x00\x10\x01"
    b"\x02\x00\x00\x00"
    b"\x0b\x00"  # (0000,0110) US: Message ID 11
    b"\x00\x00\x00\x08"
    b"\x02\x00\x00\x00"
    b"\x01\x00"  # (0000,0800) US: data set follows
    b"\x00\x00\x08\x10"
    b"\x02\x00\x00\x00"
    b"\x01\x00"  # (0000,1008) US: action type 1
)


def test_unknown_command_is_distinct_and_informative() -> None:
    with pytest.raises(UnknownCommand) as info:
        decode_command(N_ACTION_RQ)
    exc = info.value
    assert isinstance(exc, RemoteProtocolError)
    assert exc.command_field == CommandField.N_ACTION_RQ
    assert exc.message_id == 11
    assert exc.abort_reason is AbortReason.INVALID_PDU_PARAMETER_VALUE
    assert exc.command == UnsupportedCommand(0x0130, 11, "1.2.840.10008.1.20.1", True)
    assert exc.command.is_request


def test_unknown_command_without_message_id() -> None:
    vector = (
        b"\x00\x00\x00\x01"
        b"\x02\x00\x00\x00"
        b"\x30\x81"  # (0000,0100) US: N-ACTION-RSP
        b"\x00\x00\x00\x08"
        b"\x02\x00\x00\x00"
        b"\x01\x01"  # (0000,0800) US: none
    )
    with pytest.raises(UnknownCommand) as info:
        decode_command(vector)
    assert info.value.command == UnsupportedCommand(0x8130, None, None, False)
    assert not info.value.command.is_request


def test_unsupported_response_vector() -> None:
    expected = (
        b"\x00\x00\x00\x00"
        b"\x04\x00\x00\x00"
        b"\x44\x00\x00\x00"  # (0000,0000) UL: 68
        b"\x00\x00\x02\x00"
        b"\x14\x00\x00\x00"
        b"1.2.840.10008.1.20.1"  # (0000,0002) UI 20
        b"\x00\x00\x00\x01"
        b"\x02\x00\x00\x00"
        b"\x30\x81"  # (0000,0100) US: 0x8130
        b"\x00\x00\x20\x01"
        b"\x02\x00\x00\x00"
        b"\x0b\x00"  # (0000,0120) US: 11
        b"\x00\x00\x00\x08"
        b"\x02\x00\x00\x00"
        b"\x01\x01"  # (0000,0800) US: none
        b"\x00\x00\x00\x09"
        b"\x02\x00\x00\x00"
        b"\x11\x02"  # (0000,0900) US: 0x0211
    )
    command = UnsupportedCommand(0x0130, 11, "1.2.840.10008.1.20.1", True)
    assert encode_unsupported_response(command) == expected


def test_unsupported_response_refuses_responses_and_missing_ids() -> None:
    with pytest.raises(LocalProtocolError):
        encode_unsupported_response(UnsupportedCommand(0x8130, 1, None, False))
    with pytest.raises(LocalProtocolError):
        encode_unsupported_response(UnsupportedCommand(0x0130, None, None, False))


# -- errors ---------------------------------------------------------------------------------

_CF_ECHO = b"\x00\x00\x00\x01\x02\x00\x00\x00\x30\x00"  # (0000,0100) US: C-ECHO-RQ
_MID_1 = b"\x00\x00\x10\x01\x02\x00\x00\x00\x01\x00"  # (0000,0110) US: 1
_DST_NONE = b"\x00\x00\x00\x08\x02\x00\x00\x00\x01\x01"  # (0000,0800) US: 0x0101


@pytest.mark.parametrize(
    ("data", "field_part"),
    [
        pytest.param(ECHO_RQ[:5], "command set", id="truncated-header"),
        pytest.param(ECHO_RQ[:-1], "(0000,0800)", id="truncated-value"),
        pytest.param(
            _CF_ECHO + b"\x08\x00\x10\x00\x00\x00\x00\x00", "command set", id="group-0008"
        ),
        pytest.param(_MID_1 + _DST_NONE, "CommandField", id="no-command-field"),
        pytest.param(_CF_ECHO + _MID_1, "CommandDataSetType", id="no-data-set-type"),
        pytest.param(
            b"\x00\x00\x00\x01\x03\x00\x00\x00\x30\x00\x00" + _MID_1 + _DST_NONE,
            "CommandField",
            id="us-length-3",
        ),
        pytest.param(_CF_ECHO + _DST_NONE, "MessageID", id="missing-message-id"),
        pytest.param(
            b"\x00\x00\x02\x00\x02\x00\x00\x00\xc3\xa9" + _CF_ECHO + _MID_1 + _DST_NONE,
            "AffectedSOPClassUID",
            id="non-ascii-uid",
        ),
        pytest.param(
            b"\x00\x00\x00\x01\x02\x00\x00\x00\x20\x80"  # C-FIND-RSP
            b"\x00\x00\x20\x01\x02\x00\x00\x00\x01\x00"  # responding to 1
            b"\x00\x00\x00\x09\x02\x00\x00\x00\x00\xc0"  # status 0xC000
            b"\x00\x00\x01\x09\x02\x00\x00\x00\x10\x00" + _DST_NONE,  # (0000,0901) AT of 2 bytes
            "OffendingElement",
            id="at-length-2",
        ),
        pytest.param(
            b"\x00\x00\x00\x01\x02\x00\x00\x00\x01\x80" + _DST_NONE,  # C-STORE-RSP, no status
            "MessageIDBeingRespondedTo",
            id="store-rsp-missing-ids",
        ),
        pytest.param(b"", "CommandField", id="empty"),
    ],
)
def test_decode_errors_name_the_field(data: bytes, field_part: str) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        decode_command(data)
    assert not isinstance(info.value, UnknownCommand)
    assert field_part in info.value.field
    assert info.value.abort_reason is AbortReason.INVALID_PDU_PARAMETER_VALUE


def test_store_rq_without_instance_uid_is_rejected() -> None:
    vector = (
        b"\x00\x00\x02\x00\x04\x00\x00\x00"
        b"1.2\x00"  # (0000,0002) UI 4
        b"\x00\x00\x00\x01\x02\x00\x00\x00\x01\x00"  # (0000,0100) US: C-STORE-RQ
        + _MID_1
        + b"\x00\x00\x00\x08\x02\x00\x00\x00\x01\x00"  # (0000,0800): data set follows
    )
    with pytest.raises(RemoteProtocolError) as info:
        decode_command(vector)
    assert "AffectedSOPInstanceUID" in info.value.field


@pytest.mark.parametrize(
    "message",
    [
        CEchoRQ(70000),
        CEchoRSP(1, -1),
        CStoreRQ(1, "1.2", "1.2.é"),
        CStoreRQ(1, "", "1.2.3"),
        CMoveRQ(1, "1.2", "DÉST"),
        CFindRSP(1, 0xC000, offending_element=(1 << 40,)),
    ],
)
def test_encode_rejects_invalid_values(message: DimseMessage) -> None:
    with pytest.raises(LocalProtocolError):
        encode_command(message)


def test_error_comment_is_truncated_to_lo_length() -> None:
    decoded = decode_command(encode_command(CStoreRSP(1, 0xC000, error_comment="x" * 80)))
    assert isinstance(decoded, CStoreRSP)
    assert decoded.error_comment == "x" * 64


def test_error_comment_is_one_value() -> None:
    # Walkthrough 7b: a key echoed into the comment with its backslash made the LO (VM 1)
    # two values.
    rsp = CFindRSP(1, 0xC000, error_comment="PatientID 'A\\B' cannot match")
    encoded = encode_command(rsp)
    assert b"\\" not in encoded
    decoded = decode_command(encoded)
    assert isinstance(decoded, CFindRSP) and decoded.error_comment == "PatientID 'A/B' cannot match"


# -- properties -----------------------------------------------------------------------------

_uid = st.text(alphabet="0123456789.", min_size=1, max_size=64)
_ae = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1).map(
    lambda s: s[:16].replace("\\", "/")
)
_lo = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=64).map(
    lambda s: s.strip(" ").replace("\\", "/") or None
)
_us = st.integers(0, 0xFFFF)
_opt_us = st.none() | _us
_opt_uid = st.none() | _uid
_tags = st.lists(st.integers(0, 0xFFFFFFFF), max_size=4).map(tuple)
_counts = {
    "number_of_remaining_suboperations": _opt_us,
    "number_of_completed_suboperations": _opt_us,
    "number_of_failed_suboperations": _opt_us,
    "number_of_warning_suboperations": _opt_us,
}
_rsp = {
    "message_id_being_responded_to": _us,
    "status": _us,
    "affected_sop_class_uid": _opt_uid,
    "has_dataset": st.booleans(),
}
_status_detail = {"offending_element": _tags, "error_comment": _lo}

MESSAGES = st.one_of(
    st.builds(CEchoRQ, message_id=_us, affected_sop_class_uid=_uid, has_dataset=st.booleans()),
    st.builds(CEchoRSP, error_comment=_lo, **_rsp),
    st.builds(
        CStoreRQ,
        message_id=_us,
        affected_sop_class_uid=_uid,
        affected_sop_instance_uid=_uid,
        priority=st.sampled_from(Priority),
        move_originator_ae_title=st.none() | _ae,
        move_originator_message_id=_opt_us,
        has_dataset=st.booleans(),
    ),
    st.builds(CStoreRSP, affected_sop_instance_uid=_opt_uid, **_rsp, **_status_detail),
    st.builds(CFindRQ, message_id=_us, affected_sop_class_uid=_uid, priority=_us),
    st.builds(CFindRSP, **_rsp, **_status_detail),
    st.builds(CGetRQ, message_id=_us, affected_sop_class_uid=_uid, priority=_us),
    st.builds(CGetRSP, **_rsp, **_counts, **_status_detail),
    st.builds(
        CMoveRQ,
        message_id=_us,
        affected_sop_class_uid=_uid,
        move_destination=_ae,
        priority=_us,
    ),
    st.builds(CMoveRSP, **_rsp, **_counts, **_status_detail),
    st.builds(CCancelRQ, message_id_being_responded_to=_us, has_dataset=st.booleans()),
)


@settings(max_examples=300, deadline=None)
@given(MESSAGES)
def test_round_trip_and_layout(message: DimseMessage) -> None:
    encoded = encode_command(message)
    assert decode_command(encoded) == message
    # Walk the encoding independently: group length right, ascending tags, even lengths.
    (group_length,) = struct.unpack_from("<I", encoded, 8)
    assert encoded[:8] == b"\x00\x00\x00\x00\x04\x00\x00\x00"
    assert group_length == len(encoded) - 12
    offset, previous = 12, 0
    while offset < len(encoded):
        group, element, length = struct.unpack_from("<HHI", encoded, offset)
        assert group == 0
        assert element > previous
        assert length % 2 == 0
        previous = element
        offset += 8 + length
    assert offset == len(encoded)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_decode_or_raise_remote_error(data: bytes) -> None:
    with contextlib.suppress(RemoteProtocolError):
        decode_command(data)


@settings(max_examples=500, deadline=None)
@given(
    st.sampled_from([v for v, _ in VECTORS] + [N_ACTION_RQ, LENIENT_ECHO_RQ]),
    st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=6),
    st.integers(0, 200),
)
def test_mutated_vectors_decode_or_raise_remote_error(
    vector: bytes, flips: list[tuple[int, int]], cut: int
) -> None:
    data = bytearray(vector)
    for position, value in flips:
        if position < len(data):
            data[position] = value
    with contextlib.suppress(RemoteProtocolError):
        decode_command(bytes(data[: len(data) - cut % (len(data) + 1)]))
