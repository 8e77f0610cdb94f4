"""Command set codec: group 0000 in Implicit VR Little Endian (PS3.7 §6.3.1, §9.3, Annex E).

A command set is always Implicit VR Little Endian, whatever the presentation context's transfer
syntax (PS3.7 §6.3.1). Each element is tag (group, element: two little-endian uint16), a
little-endian uint32 value length, then the value. A small struct loop is enough and keeps
pydicom out of the hot path.

Receipt is lenient where peers differ and strict where framing depends on it:
- (0000,0000) Command Group Length is not trusted: we decode to the end of the buffer;
- retired or unknown group-0000 elements are skipped (PS3.7 Annex E, retired in Annex E.2);
- Command Data Set Type: anything other than 0x0101 means a data set follows (PS3.7 Annex E);
- a zero-length element counts as absent.
"""

from __future__ import annotations

import struct
from dataclasses import MISSING, fields
from enum import Enum
from typing import Final

from netdicom.core.dimse.messages import (
    CommandField,
    DimseMessage,
    UnsupportedCommand,
    message_class,
)
from netdicom.core.errors import AbortReason, LocalProtocolError, RemoteProtocolError

__all__ = [
    "DATASET_ABSENT",
    "DATASET_PRESENT",
    "UnknownCommand",
    "decode_command",
    "encode_command",
    "encode_unsupported_response",
]

# Command Data Set Type (0000,0800), PS3.7 Annex E: 0x0101 = no data set. For "present" we send
# 0x0001 like the peers in the field; on receipt anything but 0x0101 means present.
DATASET_ABSENT: Final = 0x0101
DATASET_PRESENT: Final = 0x0001

# Status 0x0211 "Unrecognized operation" (PS3.7 Annex C): the default answer to a request
# whose command we do not implement.
_UNRECOGNIZED_OPERATION: Final = 0x0211

# (0000,0902) Error Comment is LO: at most 64 characters (PS3.5 Table 6.2-1).
_LO_MAX_CHARS: Final = 64

_HEADER = struct.Struct("<HHI")  # group, element, value length (Implicit VR LE, PS3.5 §7.1.3)
_US = struct.Struct("<H")
_UL_ELEMENT = struct.Struct("<HHII")
_US_ELEMENT = struct.Struct("<HHIH")
_AT_VALUE = struct.Struct("<HH")


class _VR(Enum):
    UI = "UI"
    US = "US"
    AE = "AE"
    LO = "LO"
    AT = "AT"


# Element numbers of group 0000 (PS3.7 Annex E.1).
_GROUP_LENGTH: Final = 0x0000
_AFFECTED_SOP_CLASS_UID: Final = 0x0002
_REQUESTED_SOP_CLASS_UID: Final = 0x0003
_COMMAND_FIELD: Final = 0x0100
_MESSAGE_ID: Final = 0x0110
_MESSAGE_ID_BEING_RESPONDED_TO: Final = 0x0120
_DATA_SET_TYPE: Final = 0x0800
_STATUS: Final = 0x0900

# Dataclass field name -> (element number, VR, name for error messages).
_FIELDS: Final[dict[str, tuple[int, _VR, str]]] = {
    "affected_sop_class_uid": (_AFFECTED_SOP_CLASS_UID, _VR.UI, "AffectedSOPClassUID"),
    "message_id": (_MESSAGE_ID, _VR.US, "MessageID"),
    "message_id_being_responded_to": (
        _MESSAGE_ID_BEING_RESPONDED_TO,
        _VR.US,
        "MessageIDBeingRespondedTo",
    ),
    "move_destination": (0x0600, _VR.AE, "MoveDestination"),
    "priority": (0x0700, _VR.US, "Priority"),
    "status": (_STATUS, _VR.US, "Status"),
    "offending_element": (0x0901, _VR.AT, "OffendingElement"),
    "error_comment": (0x0902, _VR.LO, "ErrorComment"),
    "affected_sop_instance_uid": (0x1000, _VR.UI, "AffectedSOPInstanceUID"),
    "number_of_remaining_suboperations": (0x1020, _VR.US, "NumberOfRemainingSuboperations"),
    "number_of_completed_suboperations": (0x1021, _VR.US, "NumberOfCompletedSuboperations"),
    "number_of_failed_suboperations": (0x1022, _VR.US, "NumberOfFailedSuboperations"),
    "number_of_warning_suboperations": (0x1023, _VR.US, "NumberOfWarningSuboperations"),
    "move_originator_ae_title": (0x1030, _VR.AE, "MoveOriginatorApplicationEntityTitle"),
    "move_originator_message_id": (0x1031, _VR.US, "MoveOriginatorMessageID"),
}


class UnknownCommand(RemoteProtocolError):
    """A readable command set whose Command Field we do not implement (e.g. N-ACTION-RQ).

    Distinct from other decode errors so a server can answer it with a failure status instead
    of aborting: `command` holds what could be read.
    """

    def __init__(self, command: UnsupportedCommand) -> None:
        super().__init__(
            f"unsupported DIMSE command field 0x{command.command_field:04X}",
            field="CommandField (0000,0100)",
            abort_reason=AbortReason.INVALID_PDU_PARAMETER_VALUE,
        )
        self.command = command
        self.command_field = command.command_field
        self.message_id = command.message_id


class _Spec:
    """How one message class maps to elements, computed once per class."""

    __slots__ = ("cls", "elements", "mandatory")

    def __init__(self, cls: type[DimseMessage]) -> None:
        self.cls = cls
        specs: list[tuple[int, _VR, str, str]] = []
        mandatory: set[str] = set()
        for f in fields(cls):
            if f.name == "has_dataset":
                continue
            element, vr, keyword = _FIELDS[f.name]
            specs.append((element, vr, f.name, keyword))
            if f.default is MISSING and f.default_factory is MISSING:
                mandatory.add(f.name)
        specs.sort()
        self.elements = tuple(specs)
        self.mandatory = frozenset(mandatory)


# Command Field -> spec, made the first time a message of that kind is encoded or decoded.
_SPECS: Final[dict[int, _Spec]] = {}


def _spec(command_field: int) -> _Spec | None:
    spec = _SPECS.get(command_field)
    if spec is None:
        cls = message_class(command_field)
        if cls is None:
            return None
        spec = _SPECS[command_field] = _Spec(cls)
    return spec


# -- encoding ------------------------------------------------------------------------------


def _us_element(element: int, value: int, keyword: str) -> bytes:
    if not 0 <= value <= 0xFFFF:
        raise LocalProtocolError(f"{keyword} {value} does not fit an unsigned 16-bit value")
    return _US_ELEMENT.pack(0, element, 2, value)


def _text_element(element: int, value: str, vr: _VR, keyword: str) -> bytes:
    if vr is _VR.LO:
        # A comment is informational: never fail a response over it. An LO holds one value
        # (VM 1): a backslash, the value separator (PS3.5 6.4), echoed from a peer's key,
        # made the comment two values (walkthrough 7b); it becomes "/".
        raw = value[:_LO_MAX_CHARS].replace("\\", "/").encode("ascii", "replace")
    else:
        try:
            raw = value.encode("ascii")
        except UnicodeEncodeError:
            raise LocalProtocolError(f"{keyword} {value!r} is not ASCII") from None
    if len(raw) % 2:
        # PS3.5 §6.2: values have even length; UI pads with NUL, the text VRs with a space.
        raw += b"\x00" if vr is _VR.UI else b" "
    return _HEADER.pack(0, element, len(raw)) + raw


def _at_element(element: int, tags: tuple[int, ...], keyword: str) -> bytes:
    parts = [_HEADER.pack(0, element, 4 * len(tags))]
    for tag in tags:
        if not 0 <= tag <= 0xFFFFFFFF:
            raise LocalProtocolError(f"{keyword} {tag:#x} is not a 32-bit tag")
        parts.append(_AT_VALUE.pack(tag >> 16, tag & 0xFFFF))
    return b"".join(parts)


def _join_group(elements: list[tuple[int, bytes]]) -> bytes:
    elements.sort(key=lambda e: e[0])  # ascending tag order (PS3.5 §7.1)
    body = b"".join(e[1] for e in elements)
    # (0000,0000) UL: byte count of every element after it (PS3.7 §6.3.1).
    return _UL_ELEMENT.pack(0, _GROUP_LENGTH, 4, len(body)) + body


def encode_command(msg: DimseMessage) -> bytes:
    """Encode a message's command set (group 0000, Implicit VR LE, ascending tags)."""
    spec = _spec(int(msg.command_field))
    assert spec is not None  # every message class has one
    elements: list[tuple[int, bytes]] = [
        (_COMMAND_FIELD, _us_element(_COMMAND_FIELD, msg.command_field, "CommandField")),
        (
            _DATA_SET_TYPE,
            _us_element(
                _DATA_SET_TYPE,
                DATASET_PRESENT if msg.has_dataset else DATASET_ABSENT,
                "CommandDataSetType",
            ),
        ),
    ]
    for element, vr, name, keyword in spec.elements:
        value = getattr(msg, name)
        if value is None or value == "" or value == ():
            if name in spec.mandatory:
                raise LocalProtocolError(f"{keyword} is mandatory in {type(msg).__name__}")
            continue
        if vr is _VR.US:
            encoded = _us_element(element, int(value), keyword)
        elif vr is _VR.AT:
            encoded = _at_element(element, tuple(value), keyword)
        else:
            encoded = _text_element(element, str(value), vr, keyword)
        elements.append((element, encoded))
    return _join_group(elements)


def encode_unsupported_response(
    command: UnsupportedCommand, status: int = _UNRECOGNIZED_OPERATION
) -> bytes:
    """Encode a minimal failure response to a request we do not implement.

    The response carries the request's command field | 0x8000, Message ID Being Responded To,
    the SOP class UID if the request had one, the status (default 0x0211 Unrecognized
    operation, PS3.7 Annex C) and no data set.
    """
    if not command.is_request:
        raise LocalProtocolError("a response is never answered")
    if command.message_id is None:
        raise LocalProtocolError("the request carried no Message ID to respond to")
    response_field = command.command_field | 0x8000
    elements: list[tuple[int, bytes]] = [
        (_COMMAND_FIELD, _us_element(_COMMAND_FIELD, response_field, "CommandField")),
        (
            _MESSAGE_ID_BEING_RESPONDED_TO,
            _us_element(
                _MESSAGE_ID_BEING_RESPONDED_TO, command.message_id, "MessageIDBeingRespondedTo"
            ),
        ),
        (_DATA_SET_TYPE, _us_element(_DATA_SET_TYPE, DATASET_ABSENT, "CommandDataSetType")),
        (_STATUS, _us_element(_STATUS, status, "Status")),
    ]
    if command.affected_sop_class_uid:
        elements.append(
            (
                _AFFECTED_SOP_CLASS_UID,
                _text_element(
                    _AFFECTED_SOP_CLASS_UID,
                    command.affected_sop_class_uid,
                    _VR.UI,
                    "AffectedSOPClassUID",
                ),
            )
        )
    return _join_group(elements)


# -- decoding ------------------------------------------------------------------------------


def _error(message: str, keyword: str, element: int) -> RemoteProtocolError:
    return RemoteProtocolError(
        message,
        field=f"{keyword} (0000,{element:04X})",
        abort_reason=AbortReason.INVALID_PDU_PARAMETER_VALUE,
    )


def _value(raw: bytes, vr: _VR, keyword: str, element: int) -> int | str | tuple[int, ...] | None:
    """Convert one element's value; None means absent (zero length or only padding)."""
    if not raw:
        return None
    if vr is _VR.US:
        if len(raw) != 2:
            raise _error(f"{keyword} has length {len(raw)}, US needs 2", keyword, element)
        value: int = _US.unpack(raw)[0]
        return value
    if vr is _VR.AT:
        if len(raw) % 4:
            raise _error(f"{keyword} has length {len(raw)}, AT needs 4n", keyword, element)
        return tuple(
            (g << 16) | e for g, e in (_AT_VALUE.unpack_from(raw, i) for i in range(0, len(raw), 4))
        )
    if vr is _VR.UI:
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            raise _error(f"{keyword} is not an ASCII UID", keyword, element) from None
        # Trailing NUL is the UI padding (PS3.5 §6.2); some peers pad with a space instead.
        text = text.strip("\x00 ")
    else:
        # AE/LO: leading and trailing spaces are not significant (PS3.5 Table 6.2-1); tolerate
        # NUL padding and bytes outside the default repertoire rather than abort.
        text = raw.decode("ascii", "replace").strip("\x00 ")
    return text or None


def _read_elements(buf: bytes) -> dict[int, bytes]:
    raw: dict[int, bytes] = {}
    offset = 0
    end = len(buf)
    while offset < end:
        if end - offset < 8:
            raise RemoteProtocolError(
                f"command set ends inside an element header at byte {offset}",
                field="command set",
            )
        group, element, length = _HEADER.unpack_from(buf, offset)
        offset += 8
        if group != 0:
            raise RemoteProtocolError(
                f"element ({group:04X},{element:04X}) outside group 0000 in a command set",
                field="command set",
            )
        if length > end - offset:
            raise RemoteProtocolError(
                f"element (0000,{element:04X}) declares {length} bytes, {end - offset} remain",
                field=f"(0000,{element:04X}) value length",
            )
        raw[element] = buf[offset : offset + length]
        offset += length
    return raw


def _optional_us(raw: dict[int, bytes], element: int, keyword: str) -> int | None:
    try:
        value = _value(raw.get(element, b""), _VR.US, keyword, element)
    except RemoteProtocolError:
        return None
    return value if isinstance(value, int) else None


def _optional_ui(raw: dict[int, bytes], element: int, keyword: str) -> str | None:
    try:
        value = _value(raw.get(element, b""), _VR.UI, keyword, element)
    except RemoteProtocolError:
        return None
    return value if isinstance(value, str) else None


def decode_command(data: bytes | memoryview) -> DimseMessage:
    """Decode a complete command set.

    Raises `UnknownCommand` for a readable command of a kind we do not implement, and
    `RemoteProtocolError` (abort reason 6, field named) for anything truncated or garbled.
    """
    raw = _read_elements(bytes(data))

    field_raw = raw.get(_COMMAND_FIELD)
    if field_raw is None:
        raise _error("command set has no Command Field", "CommandField", _COMMAND_FIELD)
    command_field = _value(field_raw, _VR.US, "CommandField", _COMMAND_FIELD)
    if not isinstance(command_field, int):
        raise _error("Command Field is empty", "CommandField", _COMMAND_FIELD)

    dst_raw = raw.get(_DATA_SET_TYPE)
    data_set_type = (
        None if dst_raw is None else _value(dst_raw, _VR.US, "CommandDataSetType", _DATA_SET_TYPE)
    )
    if not isinstance(data_set_type, int):
        # Mandatory in every message (PS3.7 §9.3): without it the data set framing is unknown.
        raise _error(
            "command set has no Command Data Set Type", "CommandDataSetType", _DATA_SET_TYPE
        )
    has_dataset = data_set_type != DATASET_ABSENT

    spec = _spec(command_field)
    if spec is None:
        sop_class = _optional_ui(raw, _AFFECTED_SOP_CLASS_UID, "AffectedSOPClassUID")
        if sop_class is None:
            # N-GET/N-SET/N-ACTION/N-DELETE name theirs as Requested SOP Class UID.
            sop_class = _optional_ui(raw, _REQUESTED_SOP_CLASS_UID, "RequestedSOPClassUID")
        raise UnknownCommand(
            UnsupportedCommand(
                command_field=command_field,
                message_id=_optional_us(raw, _MESSAGE_ID, "MessageID"),
                affected_sop_class_uid=sop_class,
                has_dataset=has_dataset,
            )
        )

    kwargs: dict[str, object] = {"has_dataset": has_dataset}
    for element, vr, name, keyword in spec.elements:
        value = _value(raw.get(element, b""), vr, keyword, element)
        if value is None:
            if name in spec.mandatory:
                raise _error(
                    f"{CommandField(command_field).name.replace('_', '-')} lacks mandatory "
                    f"{keyword}",
                    keyword,
                    element,
                )
            continue
        kwargs[name] = value
    message: DimseMessage = spec.cls(**kwargs)  # type: ignore[arg-type]
    return message
