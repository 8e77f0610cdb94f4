"""DIMSE status codes: categories (PS3.7 Annex C) and names (PS3.7 Annex C, PS3.4 B.2.3, C.4).

The same code can mean different things per service (0xB000 is "coercion" for C-STORE and
"sub-operations complete with failures" for C-GET/C-MOVE), so names take the service into
account; the category never depends on it.
"""

from __future__ import annotations

from enum import Enum
from typing import Final, Literal

Service = Literal["echo", "store", "find", "get", "move"]

# -- named codes used by the services (PS3.7 Annex C, PS3.4 B.2.3, C.4) ---------------------
SUCCESS: Final = 0x0000
PENDING: Final = 0xFF00  # C-FIND: optional keys supported; C-GET/C-MOVE: sub-ops continuing
PENDING_WARNING: Final = 0xFF01  # C-FIND: one or more optional keys not supported
CANCEL: Final = 0xFE00

ATTRIBUTE_LIST_ERROR: Final = 0x0107
PROCESSING_FAILURE: Final = 0x0110
DUPLICATE_SOP_INSTANCE: Final = 0x0111
NO_SUCH_SOP_CLASS: Final = 0x0118
SOP_CLASS_NOT_SUPPORTED: Final = 0x0122
NOT_AUTHORIZED: Final = 0x0124
DUPLICATE_INVOCATION: Final = 0x0210
UNRECOGNIZED_OPERATION: Final = 0x0211
MISTYPED_ARGUMENT: Final = 0x0212
RESOURCE_LIMITATION: Final = 0x0213

# Storage (PS3.4 B.2.3): the low byte of A7xx/A9xx/Cxxx is implementation-specific.
OUT_OF_RESOURCES: Final = 0xA700
DATA_SET_DOES_NOT_MATCH_SOP_CLASS: Final = 0xA900
CANNOT_UNDERSTAND: Final = 0xC000
COERCION_OF_DATA_ELEMENTS: Final = 0xB000
ELEMENTS_DISCARDED: Final = 0xB006
DATA_SET_DOES_NOT_MATCH_SOP_CLASS_WARNING: Final = 0xB007

# Query/Retrieve (PS3.4 C.4.1.1.4, C.4.2.1.5, C.4.3.1.4).
IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS: Final = 0xA900
UNABLE_TO_PROCESS: Final = 0xC000
OUT_OF_RESOURCES_MATCHES: Final = 0xA701
OUT_OF_RESOURCES_SUBOPERATIONS: Final = 0xA702
MOVE_DESTINATION_UNKNOWN: Final = 0xA801
SUBOPERATIONS_WARNING: Final = 0xB000


class StatusCategory(Enum):
    """Status type of PS3.7 Annex C; UNKNOWN for codes outside every defined range."""

    SUCCESS = "Success"
    WARNING = "Warning"
    FAILURE = "Failure"
    CANCEL = "Cancel"
    PENDING = "Pending"
    UNKNOWN = "Unknown"


def category(code: int) -> StatusCategory:
    """The category of a status code (PS3.7 Annex C)."""
    if code == SUCCESS:
        return StatusCategory.SUCCESS
    if code in (PENDING, PENDING_WARNING):
        return StatusCategory.PENDING
    if code == CANCEL:
        return StatusCategory.CANCEL
    # 0x0107 and 0x0116 are the two warnings inside the otherwise-failure 0x01xx range.
    if code in (0x0001, 0x0107, 0x0116) or 0xB000 <= code <= 0xBFFF:
        return StatusCategory.WARNING
    if 0xA000 <= code <= 0xAFFF or 0xC000 <= code <= 0xCFFF or 0x0100 <= code <= 0x02FF:
        return StatusCategory.FAILURE
    return StatusCategory.UNKNOWN


# PS3.7 Annex C (general codes, usable by any service).
_GENERAL: Final[dict[int, str]] = {
    0x0000: "Success",
    0x0001: "Warning: requested optional attributes are not supported",
    0x0105: "Failure: no such attribute",
    0x0106: "Failure: invalid attribute value",
    0x0107: "Warning: attribute list error",
    0x0110: "Failure: processing failure",
    0x0111: "Failure: duplicate SOP instance",
    0x0112: "Failure: no such SOP instance",
    0x0113: "Failure: no such event type",
    0x0114: "Failure: no such argument",
    0x0115: "Failure: invalid argument value",
    0x0116: "Warning: attribute value out of range",
    0x0117: "Failure: invalid SOP instance",
    0x0118: "Failure: no such SOP class",
    0x0119: "Failure: class-instance conflict",
    0x0120: "Failure: missing attribute",
    0x0121: "Failure: missing attribute value",
    0x0122: "Refused: SOP class not supported",
    0x0123: "Failure: no such action",
    0x0124: "Refused: not authorized",
    0x0210: "Failure: duplicate invocation",
    0x0211: "Failure: unrecognized operation",
    0x0212: "Failure: mistyped argument",
    0x0213: "Failure: resource limitation",
    0xFE00: "Cancel",
}

# PS3.4 B.2.3 (Storage).
_STORE: Final[dict[int, str]] = {
    0xB000: "Warning: coercion of data elements",
    0xB006: "Warning: elements discarded",
    0xB007: "Warning: data set does not match SOP class",
}
_STORE_RANGES: Final[tuple[tuple[int, int, str], ...]] = (
    (0xA700, 0xA7FF, "Refused: out of resources"),
    (0xA900, 0xA9FF, "Error: data set does not match SOP class"),
    (0xC000, 0xCFFF, "Error: cannot understand"),
)

# PS3.4 C.4.1.1.4 (Q/R FIND; Modality Worklist uses the same set).
_FIND: Final[dict[int, str]] = {
    0x0000: "Success: matching is complete",
    0xA700: "Refused: out of resources",
    0xA900: "Failed: identifier does not match SOP class",
    0xFE00: "Cancel: matching terminated due to cancel request",
    0xFF00: "Pending: matches are continuing",
    0xFF01: "Pending: matches are continuing, one or more optional keys were not supported",
}

_RETRIEVE_COMMON: Final[dict[int, str]] = {
    0x0000: "Success: sub-operations complete, no failures",
    0xA701: "Refused: out of resources, unable to calculate number of matches",
    0xA702: "Refused: out of resources, unable to perform sub-operations",
    0xA900: "Failed: identifier does not match SOP class",
    0xAA00: "Failed: none of the frames requested were found in the SOP instance",
    0xAA01: "Failed: unable to create new object for this SOP class",
    0xAA02: "Failed: unable to extract frames",
    0xAA03: "Failed: time-based request received for a non-time-based original SOP instance",
    0xAA04: "Failed: invalid request",
    0xFE00: "Cancel: sub-operations terminated due to cancel indication",
    0xFF00: "Pending: sub-operations are continuing",
}
# PS3.4 C.4.2.1.5 (MOVE) and C.4.3.1.4 (GET): they differ in A801 and the B000 wording.
_MOVE: Final[dict[int, str]] = {
    **_RETRIEVE_COMMON,
    0xA801: "Refused: move destination unknown",
    0xB000: "Warning: sub-operations complete, one or more failures",
}
_GET: Final[dict[int, str]] = {
    **_RETRIEVE_COMMON,
    0xB000: "Warning: sub-operations complete, one or more failures or warnings",
}
_QR_RANGES: Final[tuple[tuple[int, int, str], ...]] = (
    (0xC000, 0xCFFF, "Failed: unable to process"),
)

_SERVICES: Final[dict[str, tuple[dict[int, str], tuple[tuple[int, int, str], ...]]]] = {
    "echo": ({}, ()),
    "store": (_STORE, _STORE_RANGES),
    "find": (_FIND, _QR_RANGES),
    "get": (_GET, _QR_RANGES),
    "move": (_MOVE, _QR_RANGES),
}

_GENERIC_NAMES: Final[dict[StatusCategory, str]] = {
    StatusCategory.SUCCESS: "Success",
    StatusCategory.WARNING: "Warning",
    StatusCategory.FAILURE: "Failure",
    StatusCategory.CANCEL: "Cancel",
    StatusCategory.PENDING: "Pending",
    StatusCategory.UNKNOWN: "Unknown status",
}


def status_name(code: int, service: Service | str | None = None) -> str:
    """A readable name for a status code, using the service's own table when given.

    `service` is one of "echo", "store", "find", "get", "move" (others raise ValueError).
    Codes found in no table get the name of their category alone ("Failure", "Unknown
    status"): every caller shows the code beside the name, so the name does not repeat it.
    """
    if service is not None:
        try:
            exact, ranges = _SERVICES[service]
        except KeyError:
            raise ValueError(f"unknown DIMSE service {service!r}") from None
        name = exact.get(code)
        if name is not None:
            return name
        for low, high, range_name in ranges:
            if low <= code <= high:
                return range_name
    name = _GENERAL.get(code)
    if name is not None:
        return name
    return _GENERIC_NAMES[category(code)]
