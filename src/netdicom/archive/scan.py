"""Incremental structural check of a data set as its bytes arrive (sans-IO).

The Storage SCP writes received bytes to disk untouched; this scanner walks the same bytes,
element by element, without holding them: it skips values by length, so a 1 GB pixel data
element costs one subtraction per fragment. It captures a few top-level values (SOP UIDs, the
layout's attributes), follows sequences and items (PS3.5 §7.5) to enforce a nesting-depth cap,
and reports a data set that cannot be parsed as a whole (bad VR, an item outside a sequence,
a value that overruns its container, a truncated end).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Final

from netdicom.core.dataset_walk import ITEM, ITEM_DELIMITER, SEQUENCE_DELIMITER, SHORT_VRS

UNDEFINED: Final = 0xFFFFFFFF

PIXEL_DATA: Final = 0x7FE00010

# Explicit VRs not in SHORT_VRS have 2 reserved bytes and a 32-bit length (PS3.5 Table
# 7.1-1). A VR we do not know is read that way: every VR added since 2007 uses the long form.
_SHORT_VRS: Final = SHORT_VRS

# Long-form VRs of plain values (PS3.5 Table 7.1-1): the fast path takes these and the short
# ones; SQ, and VRs it does not know, take the slow path.
_LONG_PLAIN_VRS: Final = frozenset(b"OB OD OF OL OV OW SV UC UN UR UT UV".split())
_EXPLICIT_SHORT: Final = struct.Struct("<HH2sH")
_EXPLICIT_LONG_LENGTH: Final = struct.Struct("<L")
_IMPLICIT: Final = struct.Struct("<HHL")

# Default caps (see StoreLimits in services/store_scp.py for the documented values).
DEFAULT_MAX_DEPTH: Final = 32
DEFAULT_MAX_CAPTURE: Final = 1024


class DatasetError(Exception):
    """The bytes are not a data set we can parse."""


class LimitExceeded(DatasetError):
    """The data set is well formed so far but goes beyond one of our caps."""


class _Kind(Enum):
    SEQUENCE = 1  # holds items
    ITEM = 2  # holds elements
    FRAGMENTS = 3  # encapsulated pixel data: items are opaque fragments (PS3.5 A.4)


@dataclass(slots=True)
class _Frame:
    kind: _Kind
    end: int | None  # absolute offset where a defined-length container ends
    implicit: bool  # how the elements inside are encoded
    little: bool


VrLookup = Callable[[int], "str | None"]


class _Where:
    """Where an element is, formatted only when an error message needs it."""

    __slots__ = ("offset", "tag")

    def __init__(self, tag: int, offset: int) -> None:
        self.tag = tag
        self.offset = offset

    def __str__(self) -> str:
        return f"({self.tag >> 16:04X},{self.tag & 0xFFFF:04X}) at byte {self.offset}"


class DatasetScanner:
    """Feed the bytes of one data set in pieces of any size; call `finish()` after the last.

    `capture`: top-level tags whose values (up to `max_capture` bytes) are kept in `values`.
    `vr_lookup`: the dictionary VR of a tag, used in implicit VR to recognise a defined-length
    sequence (so its items count towards the depth cap); None: such values are opaque.
    `encapsulated`: whether the transfer syntax encapsulates Pixel Data; top-level Pixel Data
    of the other kind (fragments in a native syntax, a defined length in an encapsulated one,
    PS3.5 A.4) is a DatasetError: pixels no one could decode under that transfer syntax.
    `max_elements`: more element headers than this is LimitExceeded (an identifier that
    pydicom would take seconds and hundreds of MB to decode).
    """

    __slots__ = (
        "_capture",
        "_capture_parts",
        "_capture_tag",
        "_carry",
        "_elements_left",
        "_encapsulated",
        "_implicit",
        "_little",
        "_max_capture",
        "_max_depth",
        "_max_elements",
        "_offset",
        "_skip",
        "_stack",
        "_vr_lookup",
        "depth_seen",
        "last_top_level_tag",
        "values",
    )

    def __init__(
        self,
        *,
        implicit_vr: bool,
        little_endian: bool = True,
        capture: frozenset[int] = frozenset(),
        max_depth: int = DEFAULT_MAX_DEPTH,
        max_capture: int = DEFAULT_MAX_CAPTURE,
        vr_lookup: VrLookup | None = None,
        encapsulated: bool | None = None,
        max_elements: int | None = None,
    ) -> None:
        self._implicit = implicit_vr
        # Element headers (items and delimiters included) still allowed; None: no cap.
        self._elements_left = self._max_elements = max_elements
        # Whether the transfer syntax encapsulates Pixel Data (PS3.5 A.4); None: not checked.
        self._encapsulated = encapsulated
        self._little = little_endian
        self._capture = capture
        self._max_depth = max_depth
        self._max_capture = max_capture
        self._vr_lookup = vr_lookup
        self._stack: list[_Frame] = []
        self._carry = bytearray()  # an element header split across pieces
        self._skip = 0  # value bytes still to pass over
        self._capture_tag: int | None = None
        self._capture_parts: list[bytes] = []
        self._offset = 0
        self.values: dict[int, bytes] = {}
        self.last_top_level_tag = -1
        self.depth_seen = 0

    @property
    def offset(self) -> int:
        """Bytes consumed so far."""
        return self._offset

    def passed(self, tag: int) -> bool:
        """True once a top-level element at or after `tag` has begun (the data set is in tag
        order, PS3.5 §7.1, so an element `tag` can no longer appear at the top level)."""
        return self.last_top_level_tag >= tag

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        if view.ndim != 1 or view.itemsize != 1:
            view = view.cast("B")
        end = len(view)
        pos = 0
        while pos < end:
            if self._skip:
                take = min(self._skip, end - pos)
                if self._capture_tag is not None:
                    self._capture_parts.append(bytes(view[pos : pos + take]))
                self._skip -= take
                self._offset += take
                pos += take
                if not self._skip:
                    self._value_done()
                continue
            if self._carry:
                need = 12 - len(self._carry)
                chunk = view[pos : pos + need]
                before = len(self._carry)
                self._carry += chunk
                used = self._header(self._carry, 0, len(self._carry))
                if used is None:
                    pos += len(chunk)
                    continue
                pos += used - before
                self._carry.clear()
                continue
            if not self._stack and self._little and self._elements_left is None:
                # Most of a data set is top-level elements with short values: walk them in
                # one loop; whatever else comes (sequences, items, a value crossing the end
                # of this piece, anything odd) goes one element at a time through _header.
                # (Not when elements are counted: identifiers are small, _header counts.)
                if self._implicit:
                    pos = self._top_level_implicit(view, pos, end)
                else:
                    pos = self._top_level_explicit(view, pos, end)
                if pos >= end:
                    break
            used = self._header(view, pos, end)
            if used is None:
                self._carry += view[pos:end]
                return
            pos += used

    def finish(self) -> None:
        """The last byte has been fed: raise DatasetError unless the data set is complete."""
        if self._skip or self._carry:
            raise DatasetError(f"data set ends inside an element (after {self._offset} bytes)")
        if self._stack:
            raise DatasetError("data set ends inside a sequence or item")
        self.last_top_level_tag = 0xFFFFFFFF

    # --- internals ------------------------------------------------------------------------

    def _top_level_explicit(self, view: memoryview, pos: int, end: int) -> int:
        """Consume complete plain top-level elements (explicit VR little endian) from `pos`;
        return where the first element it leaves to `_header` starts. Same rules as
        `_header`/`_element` for the elements it takes."""
        capture = self._capture
        values = self.values
        max_capture = self._max_capture
        unpack_short = _EXPLICIT_SHORT.unpack_from
        unpack_long = _EXPLICIT_LONG_LENGTH.unpack_from
        start = pos
        last = self.last_top_level_tag
        # Pixel Data goes through _element when its encoding is to be checked.
        stop = PIXEL_DATA if self._encapsulated is not None else -1
        while end - pos >= 8:
            group, element, vr, length = unpack_short(view, pos)
            if vr in _SHORT_VRS:
                size = 8
            elif vr in _LONG_PLAIN_VRS:
                if end - pos < 12:
                    break
                (length,) = unpack_long(view, pos + 8)
                size = 12
                if length == UNDEFINED:
                    break
            else:
                break  # SQ, an unknown or invalid VR: the slow path decides
            if group == 0xFFFE:
                break
            value_end = pos + size + length
            if value_end > end:
                break  # the value continues in the next piece
            tag = (group << 16) | element
            if tag == stop:
                break
            last = tag
            if tag in capture and length <= max_capture:
                values[tag] = bytes(view[pos + size : value_end])
            pos = value_end
        self._offset += pos - start
        self.last_top_level_tag = last
        return pos

    def _top_level_implicit(self, view: memoryview, pos: int, end: int) -> int:
        """As `_top_level_explicit`, for implicit VR little endian."""
        capture = self._capture
        values = self.values
        max_capture = self._max_capture
        lookup = self._vr_lookup
        unpack = _IMPLICIT.unpack_from
        start = pos
        last = self.last_top_level_tag
        stop = PIXEL_DATA if self._encapsulated is not None else -1
        while end - pos >= 8:
            group, element, length = unpack(view, pos)
            if group == 0xFFFE or length == UNDEFINED:
                break
            tag = (group << 16) | element
            if tag == stop or (lookup is not None and lookup(tag) == "SQ"):
                break
            value_end = pos + 8 + length
            if value_end > end:
                break
            last = tag
            if tag in capture and length <= max_capture:
                values[tag] = bytes(view[pos + 8 : value_end])
            pos = value_end
        self._offset += pos - start
        self.last_top_level_tag = last
        return pos

    def _header(self, buf: bytearray | memoryview, pos: int, end: int) -> int | None:
        """Parse one header at `pos`; None if more bytes are needed, else its length."""
        available = end - pos
        if available < 8:
            return None
        frame = self._stack[-1] if self._stack else None
        little = frame.little if frame is not None else self._little
        implicit = frame.implicit if frame is not None else self._implicit
        fmt = "<" if little else ">"
        group, element = struct.unpack_from(fmt + "HH", buf, pos)
        tag = (group << 16) | element
        vr: bytes | None = None
        if group == 0xFFFE or implicit or (frame is not None and frame.kind is not _Kind.ITEM):
            # Items and delimiters have no VR in any transfer syntax (PS3.5 §7.5).
            (length,) = struct.unpack_from(fmt + "L", buf, pos + 4)
            size = 8
        else:
            vr = bytes(buf[pos + 4 : pos + 6])
            if not (65 <= vr[0] <= 90 and 65 <= vr[1] <= 90):
                raise DatasetError(
                    f"invalid VR {vr!r} in element ({group:04X},{element:04X}) at byte "
                    f"{self._offset}"
                )
            if vr in _SHORT_VRS:
                (length,) = struct.unpack_from(fmt + "H", buf, pos + 6)
                size = 8
            else:
                if available < 12:
                    return None
                (length,) = struct.unpack_from(fmt + "L", buf, pos + 8)
                size = 12
        self._offset += size
        self._element(frame, tag, vr, length, implicit, little)
        return size

    def _element(
        self,
        frame: _Frame | None,
        tag: int,
        vr: bytes | None,
        length: int,
        implicit: bool,
        little: bool,
    ) -> None:
        where = _Where(tag, self._offset)
        if self._elements_left is not None:
            self._elements_left -= 1
            if self._elements_left < 0:
                raise LimitExceeded(f"more than {self._max_elements} elements")
        kind = _Kind.ITEM if frame is None else frame.kind
        if kind is _Kind.ITEM:
            if tag == ITEM_DELIMITER:
                if frame is None or frame.end is not None:
                    raise DatasetError(f"item delimiter {where} outside an undefined-length item")
                self._stack.pop()
                self._containers_done()
                return
            if tag in (ITEM, SEQUENCE_DELIMITER):
                raise DatasetError(f"item or sequence delimiter {where} outside a sequence")
            if frame is None:
                self.last_top_level_tag = tag
                encapsulated = self._encapsulated
                if (
                    tag == PIXEL_DATA
                    and encapsulated is not None
                    and (length == UNDEFINED) != encapsulated
                ):
                    raise DatasetError(
                        "Pixel Data is native but the transfer syntax encapsulates it (PS3.5 A.4)"
                        if encapsulated
                        else "Pixel Data is encapsulated but the transfer syntax is native "
                        "(PS3.5 A.4)"
                    )
            if length == UNDEFINED:
                if vr == b"SQ" or vr is None:
                    self._push(_Kind.SEQUENCE, None, implicit, little)
                elif vr == b"UN":
                    # PS3.5 §6.2.2: an undefined-length UN is a sequence in implicit VR LE.
                    self._push(_Kind.SEQUENCE, None, True, True)
                elif tag == PIXEL_DATA and vr in (b"OB", b"OW"):
                    self._stack.append(_Frame(_Kind.FRAGMENTS, None, implicit, little))
                else:
                    raise DatasetError(f"undefined length for VR {vr!r} in element {where}")
                return
            is_sequence = vr == b"SQ" or (
                vr is None and self._vr_lookup is not None and self._vr_lookup(tag) == "SQ"
            )
            if is_sequence:
                if length:
                    self._fits(self._offset + length, where)
                    self._push(_Kind.SEQUENCE, self._offset + length, implicit, little)
                else:
                    self._containers_done()
                return
            if frame is None and tag in self._capture and length <= self._max_capture:
                self._capture_tag = tag
            self._fits(self._offset + length, where)
            self._value(length)
            return
        # Inside a sequence or encapsulated pixel data: only items and the delimiter.
        if tag == SEQUENCE_DELIMITER:
            assert frame is not None
            if frame.end is not None:
                raise DatasetError(f"sequence delimiter {where} in a defined-length sequence")
            self._stack.pop()
            self._containers_done()
            return
        if tag != ITEM:
            raise DatasetError(f"element {where} where a sequence item was expected")
        if kind is _Kind.FRAGMENTS:
            if length == UNDEFINED:
                raise DatasetError(f"pixel data fragment {where} without a length")
            self._fits(self._offset + length, where)
            self._value(length)
            return
        if length == UNDEFINED:
            self._stack.append(_Frame(_Kind.ITEM, None, implicit, little))
        elif length:
            self._fits(self._offset + length, where)
            self._stack.append(_Frame(_Kind.ITEM, self._offset + length, implicit, little))
        else:
            self._containers_done()

    def _fits(self, end: int, where: _Where) -> None:
        """A value or container ending at `end` must end within its defined-length parent."""
        for frame in reversed(self._stack):
            if frame.end is not None:
                if end > frame.end:
                    raise DatasetError(f"element {where} overruns its container")
                return

    def _push(self, kind: _Kind, end: int | None, implicit: bool, little: bool) -> None:
        self._stack.append(_Frame(kind, end, implicit, little))
        depth = sum(1 for frame in self._stack if frame.kind is _Kind.SEQUENCE)
        self.depth_seen = max(self.depth_seen, depth)
        if depth > self._max_depth:
            raise LimitExceeded(f"sequences nested deeper than {self._max_depth} levels")

    def _value(self, length: int) -> None:
        if length:
            self._skip = length
        else:
            self._value_done()

    def _value_done(self) -> None:
        if self._capture_tag is not None:
            self.values[self._capture_tag] = b"".join(self._capture_parts)
            self._capture_tag = None
            self._capture_parts = []
        self._containers_done()

    def _containers_done(self) -> None:
        """Close every defined-length container that ends here."""
        stack = self._stack
        while stack:
            end = stack[-1].end
            if end is None or self._offset < end:
                if end is not None:
                    return
                # An undefined-length container inside a defined-length one must not overrun it.
                for frame in stack:
                    if frame.end is not None and self._offset > frame.end:
                        raise DatasetError(f"element overruns its container at byte {end}")
                return
            if self._offset > end:
                raise DatasetError(f"element overruns its container ending at byte {end}")
            stack.pop()
