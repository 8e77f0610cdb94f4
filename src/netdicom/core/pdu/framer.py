"""Incremental PDU framing: bytes from the transport in, complete PDUs out (PS3.8 §9.3.1).

The framer never assumes that one read is one PDU. It validates each 6-byte PDU header as soon
as its bytes arrive (the type byte alone is enough to refuse an unknown PDU) and checks the
declared length against a cap before it buffers a single byte of the body, so a peer cannot make
us allocate memory by announcing a huge PDU.
"""

from __future__ import annotations

import struct
from typing import Final

from netdicom.core.errors import AbortReason, LocalProtocolError, RemoteProtocolError
from netdicom.core.pdu.codec import PDU_NAMES, decode_pdu, unknown_pdu
from netdicom.core.pdu.types import PDU, PDUType

__all__ = ["INTERNAL_PDATA_CAP", "MAX_OTHER_PDU", "Framer"]

INTERNAL_PDATA_CAP: Final = 4 * 1024 * 1024
"""Largest P-DATA-TF accepted when we advertised Maximum Length 0 ("no limit", PS3.8 D.1)."""

MAX_OTHER_PDU: Final = 256 * 1024
"""Largest PDU of any other type accepted (an A-ASSOCIATE-RQ is the largest in practice: 128
contexts of ten transfer syntaxes each, with role and extended negotiation items, stay under
130 KB). A peer may make us hold this much before it is associated: kept well below 1 MiB."""

_HEADER: Final = struct.Struct(">BxI")
_COMPACT_AT: Final = 1 << 16  # consumed bytes worth reclaiming from the front of the buffer


class Framer:
    """Split a byte stream into PDUs.

    `max_pdata_length` is the Maximum Length we advertised (the limit on a P-DATA-TF's
    PDU-length field, PS3.8 Annex D.1); 0 means we advertised none, and INTERNAL_PDATA_CAP
    applies instead. `max_other_length` caps every other PDU type.

    Usage: `feed()` what the transport read, then call `next_pdu()` until it returns None.
    A framing error (unknown PDU type, declared length over the cap) is raised by `next_pdu()`
    once the PDUs before it have been returned, and again on every later call: the stream can
    no longer be followed (later `feed()` calls drop their bytes). A PDU that is framed
    correctly but malformed inside raises once and is consumed, so the following PDUs can
    still be read.
    """

    __slots__ = ("_buf", "_caps", "_error", "_error_at", "_pos", "_scan")

    def __init__(self, max_pdata_length: int, max_other_length: int = MAX_OTHER_PDU) -> None:
        if not 0 <= max_pdata_length <= 0xFFFFFFFF:
            raise LocalProtocolError(f"max_pdata_length {max_pdata_length} is not a uint32")
        if not 0 <= max_other_length <= 0xFFFFFFFF:
            raise LocalProtocolError(f"max_other_length {max_other_length} is not a uint32")
        pdata_cap = max_pdata_length or INTERNAL_PDATA_CAP
        self._caps: dict[int, int] = {t: max_other_length for t in PDU_NAMES}
        self._caps[PDUType.P_DATA_TF] = pdata_cap
        self._buf = bytearray()
        self._pos = 0  # start of the next PDU to hand out
        self._scan = 0  # start of the first PDU header not yet validated
        self._error: RemoteProtocolError | None = None
        self._error_at = -1  # offset in _buf of the header that caused _error

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Append bytes read from the transport; checks new PDU headers immediately."""
        if self._error is not None:
            return  # the stream is already unreadable past the bad header: drop the bytes
        if self._pos and self._pos == len(self._buf):
            self._buf.clear()
            self._pos = self._scan = 0
        elif self._pos >= _COMPACT_AT and self._pos * 2 >= len(self._buf):
            del self._buf[: self._pos]
            self._scan -= self._pos
            self._pos = 0
        self._buf += data
        self._check_headers()

    def next_pdu(self) -> PDU | None:
        """Return the next complete PDU, or None until more bytes arrive.

        Raises RemoteProtocolError for a bad PDU (see the class docstring).
        """
        pos = self._pos
        if self._error is not None and pos == self._error_at:
            raise self._error
        buf = self._buf
        if len(buf) - pos < _HEADER.size:
            return None
        pdu_type, length = _HEADER.unpack_from(buf, pos)
        end = pos + _HEADER.size + length
        if end > len(buf):
            return None
        if pos == 0 and end == len(buf):
            # The buffer holds exactly this PDU: hand it over instead of copying it.
            body = memoryview(buf)[_HEADER.size :]
            self._buf = bytearray()
            self._pos = self._scan = 0
            if self._error is not None:
                self._error_at = 0  # the bad header was cut off right after this PDU
        else:
            body = memoryview(buf[pos + _HEADER.size : end])
            self._pos = end
        # Read-only so that PDV data (a view of the body) cannot be changed through the PDU.
        return decode_pdu(pdu_type, body.toreadonly())

    def peek_pdu_type(self) -> int | None:
        """The type byte of the next PDU if it has arrived, else None."""
        if self._pos < len(self._buf):
            return self._buf[self._pos]
        return None

    def pending(self) -> int:
        """Bytes buffered but not yet returned as a PDU (> 0: the peer is mid-PDU)."""
        return len(self._buf) - self._pos

    def _check_headers(self) -> None:
        # Walk the headers of the PDUs that arrived, so that a bad one is seen as early as
        # possible whatever the reader does with next_pdu(); cost is per PDU, not per byte.
        buf = self._buf
        scan = self._scan
        while scan < len(buf):
            pdu_type = buf[scan]
            if pdu_type not in self._caps:
                self._fail(scan, unknown_pdu(buf[scan : scan + 4]))
                return
            if len(buf) - scan < _HEADER.size:
                break
            length: int = _HEADER.unpack_from(buf, scan)[1]
            if length > self._caps[pdu_type]:
                field = f"{PDU_NAMES[pdu_type]} length"
                self._fail(
                    scan,
                    RemoteProtocolError(
                        f"{field}: declared {length} bytes, the limit is {self._caps[pdu_type]}",
                        field=field,
                        abort_reason=AbortReason.INVALID_PDU_PARAMETER_VALUE,
                    ),
                )
                return
            scan += _HEADER.size + length
        self._scan = scan

    def _fail(self, offset: int, error: RemoteProtocolError) -> None:
        # Keep the good PDUs before the bad header; drop the rest, it cannot be framed.
        del self._buf[offset:]
        self._scan = offset
        self._error = error
        self._error_at = offset
