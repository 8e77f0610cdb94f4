"""Checks on the values we put into an A-ASSOCIATE-RQ/AC (PS3.8 §9.3, PS3.7 D.3.3, PS3.5 §9)."""

from __future__ import annotations

from netdicom.core.dimse.fragments import MIN_PEER_MAX_PDU
from netdicom.core.errors import LocalProtocolError
from netdicom.core.printable import quoted

# PS3.8 Annex D.1: Maximum Length is a 32-bit unsigned field; 0 means "no limit".
MAX_PDU_FIELD = 0xFFFF_FFFF


def clean_ae_title(title: str, what: str) -> str:
    """Return the AE title trimmed, or raise LocalProtocolError saying what is wrong.

    PS3.8 Table 9-11 and PS3.5 (AE VR): at most 16 ISO 646 characters, no backslash, no
    control characters; leading and trailing spaces are not significant and a title made
    only of spaces ("no name") shall not be used.
    """
    trimmed = title.strip(" ")
    if not trimmed:
        raise LocalProtocolError(f"{what} AE title {quoted(title)} is empty or only spaces")
    if len(trimmed) > 16:
        raise LocalProtocolError(f"{what} AE title {quoted(trimmed)} is longer than 16 characters")
    for char in trimmed:
        if not (0x20 <= ord(char) < 0x7F):
            raise LocalProtocolError(
                f"{what} AE title {quoted(trimmed)} holds {quoted(char)}: only printable ASCII is allowed"
            )
        if char == "\\":
            raise LocalProtocolError(f"{what} AE title {quoted(trimmed)} holds a backslash")
    return trimmed


def check_uid(uid: str, what: str) -> None:
    """Raise LocalProtocolError unless `uid` looks like a UID (PS3.5 §9.1: digits, dots, ≤ 64)."""
    if not uid or len(uid) > 64:
        raise LocalProtocolError(f"{what} {quoted(uid)} must hold 1 to 64 characters")
    if any(not part.isdigit() or not part.isascii() for part in uid.split(".")):
        raise LocalProtocolError(f"{what} {quoted(uid)} is not a UID (digits separated by dots)")


def check_version_name(name: str | None) -> None:
    """PS3.7 D.3.3.2: the implementation version name has 1 to 16 ISO 646 characters."""
    if name is None:
        return
    if not 1 <= len(name) <= 16:
        raise LocalProtocolError(
            f"implementation version name {quoted(name)} must hold 1 to 16 characters"
        )
    if any(not (0x20 <= ord(char) < 0x7F) for char in name):
        raise LocalProtocolError(
            f"implementation version name {quoted(name)} must be printable ASCII"
        )


def peer_max_pdu_problem(max_pdu: int) -> str | None:
    """Why a peer's Maximum Length (PS3.8 D.1) cannot be honoured, or None. Below 8 bytes a
    P-DATA-TF cannot carry an even fragment: sending at all would break its own limit."""
    if max_pdu == 0 or max_pdu >= MIN_PEER_MAX_PDU:
        return None
    return (
        f"its maximum PDU length {max_pdu} leaves no room for data "
        f"(a P-DATA-TF needs at least {MIN_PEER_MAX_PDU} bytes)"
    )


def check_max_pdu(max_pdu: int) -> None:
    """0 (no limit) or a length that fits the 32-bit field and leaves room for an even
    fragment: what we require of a peer (peer_max_pdu_problem), we offer (7 was taken here and
    refused by the other side)."""
    if max_pdu == 0:
        return
    if not MIN_PEER_MAX_PDU <= max_pdu <= MAX_PDU_FIELD:
        raise LocalProtocolError(
            f"maximum PDU length {max_pdu} must be 0 (none) or {MIN_PEER_MAX_PDU}..{MAX_PDU_FIELD}"
        )


def clean_uid(uid: str) -> str:
    """Strip the trailing NUL or spaces some peers leave on UIDs (DESIGN.md §3)."""
    return uid.strip("\x00 ")
