"""Byte-level helpers shared by the PDU codec: bounds-checked reads, item walking, text fields.

Every read checks its bounds first, so a malformed PDU can only ever surface as
RemoteProtocolError (never IndexError, struct.error or UnicodeDecodeError), and nothing is
allocated from a declared length before that length is known to fit the buffer.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Final

from netdicom.core.errors import AbortReason, LocalProtocolError, RemoteProtocolError

U16: Final = struct.Struct(">H")
U32: Final = struct.Struct(">I")
ITEM_HEADER: Final = struct.Struct(">BxH")  # type, reserved (NT), uint16 length (PS3.8 §9.3.1)

MAX_U16: Final = 0xFFFF
MAX_U32: Final = 0xFFFFFFFF

# Names used in error messages and RemoteProtocolError.field; one place so they stay consistent.
ITEM_NAMES: Final[dict[int, str]] = {
    0x10: "application context item 0x10",
    0x20: "presentation context item 0x20",
    0x21: "presentation context item 0x21",
    0x30: "abstract syntax sub-item 0x30",
    0x40: "transfer syntax sub-item 0x40",
    0x50: "user information item 0x50",
    0x51: "maximum length sub-item 0x51",
    0x52: "implementation class UID sub-item 0x52",
    0x53: "asynchronous operations window sub-item 0x53",
    0x54: "SCP/SCU role selection sub-item 0x54",
    0x55: "implementation version name sub-item 0x55",
    0x56: "SOP class extended negotiation sub-item 0x56",
    0x57: "SOP class common extended negotiation sub-item 0x57",
    0x58: "user identity sub-item 0x58",
    0x59: "user identity sub-item 0x59",
}


def item_name(item_type: int) -> str:
    return ITEM_NAMES.get(item_type, f"item 0x{item_type:02X}")


def invalid(field: str, message: str) -> RemoteProtocolError:
    return RemoteProtocolError(
        f"{field}: {message}",
        field=field,
        abort_reason=AbortReason.INVALID_PDU_PARAMETER_VALUE,
    )


def unexpected(field: str, message: str) -> RemoteProtocolError:
    return RemoteProtocolError(
        f"{field}: {message}",
        field=field,
        abort_reason=AbortReason.UNEXPECTED_PDU_PARAMETER,
    )


# --- decoding ---------------------------------------------------------------------------------


def need(buf: memoryview, start: int, size: int, end: int, field: str) -> None:
    """Raise unless `size` bytes from `start` lie within both `end` and the buffer."""
    if size < 0 or start + size > end or start + size > len(buf):
        raise invalid(field, f"needs {size} bytes at offset {start}, only {end - start} left")


def read_u16(buf: memoryview, offset: int, end: int, field: str) -> int:
    need(buf, offset, 2, end, field)
    value: int = U16.unpack_from(buf, offset)[0]
    return value


def read_u32(buf: memoryview, offset: int, end: int, field: str) -> int:
    need(buf, offset, 4, end, field)
    value: int = U32.unpack_from(buf, offset)[0]
    return value


def iter_items(
    buf: memoryview, start: int, end: int, parent: str
) -> Iterator[tuple[int, int, int]]:
    """Yield (item type, body start, body end) for each item in buf[start:end]."""
    pos = start
    while pos < end:
        if end - pos < ITEM_HEADER.size:
            raise invalid(f"{parent} item header", f"{end - pos} stray bytes where an item starts")
        item_type, length = ITEM_HEADER.unpack_from(buf, pos)
        body = pos + ITEM_HEADER.size
        if body + length > end:
            field = f"{item_name(item_type)} length"
            raise invalid(field, f"declares {length} bytes, only {end - body} left in {parent}")
        yield item_type, body, body + length
        pos = body + length


def uid(buf: memoryview, start: int, end: int, field: str) -> str:
    """A UID in a negotiation item (PS3.8 Annex F); tolerate a trailing NUL or space."""
    try:
        text = bytes(buf[start:end]).decode("ascii")
    except UnicodeDecodeError:
        raise invalid(field, "is not ASCII") from None
    return text.rstrip("\x00 ")


def lenient_text(buf: memoryview, start: int, end: int) -> str:
    """Informational text (implementation class UID / version name, PS3.7 D.3.3.2): never fatal."""
    return bytes(buf[start:end]).decode("ascii", errors="replace").rstrip("\x00 ")


def ae_title(buf: memoryview, start: int, field: str, *, strict: bool) -> str:
    """A 16-byte AE title; leading/trailing spaces are not significant (PS3.8 Table 9-11).
    Trailing NULs are dropped too (some implementations pad with them); a leading NUL is kept,
    so the acceptor refuses the title for its control character instead of reading "\\0FUZZ"
    as "FUZZ"."""
    raw = bytes(buf[start : start + 16])
    if strict:
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            raise invalid(field, "is not ASCII (ISO 646)") from None
    else:
        # The A-ASSOCIATE-AC copies are reserved and not tested (PS3.8 Table 9-17).
        text = raw.decode("ascii", errors="replace")
    return text.rstrip(" \x00").lstrip(" ")


# --- encoding ---------------------------------------------------------------------------------


def item(item_type: int, *parts: bytes | memoryview, reserved: int = 0) -> bytes:
    """One item or sub-item: type, reserved byte, uint16 length, body (PS3.8 §9.3.1)."""
    length = sum(len(p) for p in parts)
    if length > MAX_U16:
        raise LocalProtocolError(f"{item_name(item_type)} body of {length} bytes exceeds 65535")
    return b"".join((bytes((item_type, reserved)), U16.pack(length), *parts))


def ascii_bytes(value: str, what: str) -> bytes:
    try:
        return value.encode("ascii")
    except UnicodeEncodeError:
        raise LocalProtocolError(f"{what} {value!r} is not ASCII") from None


def u8(value: int, what: str) -> bytes:
    if not 0 <= value <= 0xFF:
        raise LocalProtocolError(f"{what} {value} does not fit in one byte")
    return bytes((value,))


def u16(value: int, what: str) -> bytes:
    if not 0 <= value <= MAX_U16:
        raise LocalProtocolError(f"{what} {value} does not fit in 16 bits")
    return U16.pack(value)


def u32(value: int, what: str) -> bytes:
    if not 0 <= value <= MAX_U32:
        raise LocalProtocolError(f"{what} {value} does not fit in 32 bits")
    return U32.pack(value)


def prefixed(value: bytes, what: str) -> bytes:
    """A uint16 length followed by the bytes (used inside 0x54, 0x56, 0x57, 0x58, 0x59)."""
    return b"".join((u16(len(value), f"{what} length"), value))
