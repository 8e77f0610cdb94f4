"""Does a data set end where its file ends? A walk over element headers, not values.

A file cut short (a copy interrupted, a disk full while writing) still has a good header: the
planning probe reads the meta and the first elements and would send it. Sent as it is, the peer
either aborts the association (dcmtk: every later file of the run fails too) or, worse, stores
a damaged instance and answers success. So before a file is sent its element headers are
walked to the end, skipping over values (PS3.5 §7.1 for element layouts, §7.5 for sequences and
items of undefined length, §A.4 for encapsulated pixel data): the last element must end exactly
at the end of the file. Values are not read, so a 0.5 MB CT image costs a walk over the ~100
headers in the bytes the probe already holds, and rarely one more read.
"""

from __future__ import annotations

import contextlib
import struct
from typing import BinaryIO, Final

from netdicom.core.errors import NetDicomError

# Explicit VRs with a 2-byte reserved field and a 4-byte length (PS3.5 Table 7.1-1).
LONG_VRS: Final = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)
SHORT_VRS: Final = frozenset(
    {
        b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS", b"LO", b"LT",
        b"PN", b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US",
    }
)  # fmt: skip
_UNDEFINED: Final = 0xFFFFFFFF
# (FFFE,E000) item, (FFFE,E00D) item delimiter, (FFFE,E0DD) sequence delimiter (PS3.5 §7.5).
ITEM: Final = 0xFFFEE000
ITEM_DELIMITER: Final = 0xFFFEE00D
SEQUENCE_DELIMITER: Final = 0xFFFEE0DD
# Nesting deeper than this is not a real data set; the walk stops judging (PS3.5 sets no
# limit, and the receiver has its own cap).
_MAX_DEPTH: Final = 64
_READ: Final = 8192
# What an element of undefined length holds (see _Walk._header).
_NONE: Final = 0
_ITEMS: Final = 1  # items in the data set's own encoding
_IMPLICIT_ITEMS: Final = 2  # items in implicit VR little endian: a UN sequence (PS3.5 6.2.2)


class Incomplete(NetDicomError):
    """The data set does not end where the file ends."""


class PixelEncodingMismatch(Incomplete):
    """Pixel Data encapsulated where the transfer syntax is native, or the reverse."""


class _Unknown(Exception):
    """Something the walk cannot judge (an unknown VR, deep nesting): no verdict."""


class _Cursor:
    """Bytes of the file by absolute offset, read in small blocks as the walk needs them."""

    __slots__ = ("_buffer", "_fp", "_start", "size")

    def __init__(self, fp: BinaryIO, start: int, head: bytes, size: int) -> None:
        self._fp = fp
        self._start = start  # file offset of self._buffer[0]
        self._buffer = head
        self.size = size

    def bytes_at(self, offset: int, count: int) -> bytes:
        rel = offset - self._start
        if rel < 0 or rel + count > len(self._buffer):
            self._fp.seek(offset)
            self._buffer = self._fp.read(max(count, _READ))
            self._start = offset
            rel = 0
        return self._buffer[rel : rel + count]


def check_complete(
    fp: BinaryIO,
    start: int,
    head: bytes,
    size: int,
    *,
    explicit: bool,
    big_endian: bool,
    encapsulated: bool | None = None,
) -> None:
    """Raise Incomplete unless the data set from file offset `start` ends at `size` (the file's
    length). `head` holds the file's bytes from `start` on, as far as already read. An element
    the walk cannot judge ends the check without a verdict: the peer will judge it.

    `encapsulated`: whether the transfer syntax encapsulates Pixel Data (PS3.5 A.4: an
    undefined length of fragments there, a defined length in the native syntaxes); a Pixel
    Data that says otherwise raises PixelEncodingMismatch (the meta names the wrong syntax,
    and a peer would store pixels it cannot decode, or fail the transfer)."""
    walk = _Walk(_Cursor(fp, start, head, size), explicit=explicit, big_endian=big_endian)
    walk.encapsulated = encapsulated
    with contextlib.suppress(_Unknown):
        walk.elements(start, size, depth=0, until=None)


_PIXEL_DATA: Final = 0x7FE00010


class _Walk:
    __slots__ = ("_cursor", "_explicit", "_long", "_short", "_tag", "encapsulated")

    def __init__(self, cursor: _Cursor, *, explicit: bool, big_endian: bool) -> None:
        self._cursor = cursor
        self._explicit = explicit
        order = ">" if big_endian else "<"
        self._tag = struct.Struct(order + "HH")
        self._short = struct.Struct(order + "H")
        self._long = struct.Struct(order + "I")
        self.encapsulated: bool | None = None

    def _header(self, pos: int, limit: int) -> tuple[int, int, int, int]:
        """(tag, value length, value offset, what an undefined length holds: _NONE, _ITEMS or
        _IMPLICIT_ITEMS) of the element at `pos`. A value of defined length is skipped
        whatever it holds."""
        if pos + 8 > limit:
            raise self._short_by(pos, 8, limit, "an element header")
        raw = self._cursor.bytes_at(pos, 12)
        group, element = self._tag.unpack_from(raw)
        tag = group << 16 | element
        if group == 0xFFFE or not self._explicit:
            # Items and delimiters have no VR in any transfer syntax (PS3.5 §7.5).
            (length,) = self._long.unpack_from(raw, 4)
            return tag, length, pos + 8, _ITEMS if length == _UNDEFINED else _NONE
        vr = raw[4:6]
        if vr in SHORT_VRS:
            (length,) = self._short.unpack_from(raw, 6)
            return tag, length, pos + 8, _NONE
        if vr in LONG_VRS:
            if pos + 12 > limit:
                raise self._short_by(pos, 12, limit, "an element header")
            (length,) = self._long.unpack_from(raw, 8)
            # Undefined length: a sequence, or encapsulated pixel data (OB/OW, PS3.5 §A.4);
            # for UN, a sequence whose items "remain in Implicit VR form" (PS3.5 6.2.2),
            # little endian whatever the data set's byte order.
            if length != _UNDEFINED:
                return tag, length, pos + 12, _NONE
            return tag, length, pos + 12, _IMPLICIT_ITEMS if vr == b"UN" else _ITEMS
        raise _Unknown

    def _short_by(self, pos: int, need: int, limit: int, what: str) -> Incomplete:
        if limit == self._cursor.size:
            return Incomplete(
                f"the file is truncated: {what} at byte {pos} needs {need} bytes, "
                f"{limit - pos} are left"
            )
        return Incomplete(f"{what} at byte {pos} runs past the item that holds it")

    def elements(self, pos: int, limit: int, *, depth: int, until: int | None) -> int:
        """Walk elements from `pos` up to `limit` (or to the delimiter `until`); the offset
        just past the last one (past the delimiter when there is one)."""
        if depth > _MAX_DEPTH:
            raise _Unknown
        while pos < limit:
            tag, length, value, nested = self._header(pos, limit)
            if until is not None and tag == until:
                return value
            if tag == _PIXEL_DATA and depth == 0 and self.encapsulated is not None:
                self._check_pixel_encoding(nested != _NONE)
            if nested == _IMPLICIT_ITEMS:
                implicit = _Walk(self._cursor, explicit=False, big_endian=False)
                pos = implicit.items(value, limit, depth=depth + 1)
            elif nested:
                pos = self.items(value, limit, depth=depth + 1)
            else:
                end = value + length
                if end > limit:
                    raise self._value_past(tag, length, value, limit)
                pos = end
        if until is not None:
            raise self._short_by(pos, 8, limit, "a delimiter")
        return pos

    def items(self, pos: int, limit: int, *, depth: int) -> int:
        """Walk the items of a sequence of undefined length (or the fragments of encapsulated
        pixel data, which have the same layout, PS3.5 §A.4) from `pos` to its delimiter; the
        offset just past the delimiter."""
        while pos < limit:
            tag, length, value, _ = self._header(pos, limit)
            if tag == SEQUENCE_DELIMITER:
                return value
            if tag != ITEM:
                raise _Unknown
            if length == _UNDEFINED:
                pos = self.elements(value, limit, depth=depth + 1, until=ITEM_DELIMITER)
            else:
                end = value + length
                if end > limit:
                    raise self._value_past(tag, length, value, limit)
                pos = end
        raise self._short_by(pos, 8, limit, "a sequence delimiter")

    def _check_pixel_encoding(self, undefined_length: bool) -> None:
        if undefined_length and not self.encapsulated:
            raise PixelEncodingMismatch(
                "Pixel Data is encapsulated (compressed fragments), but the file's transfer "
                "syntax is a native one (PS3.5 A.4): its meta names the wrong transfer syntax"
            )
        if self.encapsulated and not undefined_length:
            raise PixelEncodingMismatch(
                "Pixel Data is native (not encapsulated), but the file's transfer syntax "
                "encapsulates it (PS3.5 A.4): its meta names the wrong transfer syntax"
            )

    def _value_past(self, tag: int, length: int, value: int, limit: int) -> Incomplete:
        name = f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
        if limit == self._cursor.size:
            return Incomplete(
                f"the file is truncated: element {name} declares {length} bytes, "
                f"{limit - value} are left"
            )
        return Incomplete(f"element {name} declares {length} bytes, past the item that holds it")
