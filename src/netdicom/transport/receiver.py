"""PDU framing in the buffers the socket reads into (asyncio.BufferedProtocol), without copies.

The same rules as core.pdu.framer.Framer (PS3.8 §9.3.1: a PDU is a 6-byte header and a body;
one read is never assumed to be one PDU; the type byte alone refuses an unknown PDU; the
declared length is checked against a cap before a byte of the body is kept), arranged so that
received bytes are never copied in user space:

- the socket reads into the free end of an "arena" (a bytearray); every PDU complete in it is
  handed out as a read-only view of the arena, which is never written there again (P-DATA
  values are views of those views, so a data-set fragment can be queued and written to disk
  as it is);
- a full arena is replaced by a new one (the old one lives as long as views of it do); only a
  PDU cut by the end of the arena is copied over. Arenas start small (an idle or chatty
  association holds 16 KiB) and double while data streams in, up to 1 MiB, so that bulk data
  comes in large reads: the number of reads matters more than copies.
- retired arenas are kept (a few) and reused once no view of them is left: fresh memory costs
  a page fault per 4 KiB, which is more than the copy it would hold.

A peer announcing a huge PDU and sending nothing costs nothing: an arena grows only with the
bytes that came. Not thread-safe; one per connection.
"""

from __future__ import annotations

import struct
import sys
from collections import deque
from typing import Final

from netdicom.core.errors import AbortReason, LocalProtocolError, RemoteProtocolError
from netdicom.core.pdu.codec import PDU_NAMES, decode_pdu, unknown_pdu
from netdicom.core.pdu.framer import INTERNAL_PDATA_CAP, MAX_OTHER_PDU
from netdicom.core.pdu.types import PDU, PDUType

__all__ = ["PduReceiver"]

_HEADER: Final = struct.Struct(">BxI")
_FIRST_ARENA: Final = 16_384
_MAX_ARENA: Final = 1 << 20
# A read into less room than this (or an eighth of the arena) is not worth a system call: a
# new arena is taken first.
_MIN_ROOM: Final = 4096
# Where dropped bytes are read into.
_DROPPED: Final = memoryview(bytearray(65_536))
# Retired arenas kept for reuse (each at most _MAX_ARENA).
_SPARE_ARENAS: Final = 4

_Ready = tuple[int, memoryview] | RemoteProtocolError


class PduReceiver:
    """Incremental framing for a BufferedProtocol: `get_buffer()` says where the next bytes
    go, `buffer_updated(n)` says how many came, `next_pdu()` hands out PDUs (None when none is
    complete). Errors behave as Framer's: a framing error (unknown type, length over the cap)
    is raised once the PDUs before it are handed out, and on every later call, and the bytes
    after it are dropped; a PDU framed correctly but malformed inside raises once.
    """

    __slots__ = (
        "_arena",
        "_caps",
        "_end",
        "_error",
        "_offered",
        "_ready",
        "_spare",
        "_start",
        "_streaming",
    )

    def __init__(self, max_pdata_length: int, max_other_length: int = MAX_OTHER_PDU) -> None:
        if not 0 <= max_pdata_length <= 0xFFFFFFFF:
            raise LocalProtocolError(f"max_pdata_length {max_pdata_length} is not a uint32")
        if not 0 <= max_other_length <= 0xFFFFFFFF:
            raise LocalProtocolError(f"max_other_length {max_other_length} is not a uint32")
        self._caps: dict[int, int] = {t: max_other_length for t in PDU_NAMES}
        self._caps[PDUType.P_DATA_TF] = max_pdata_length or INTERNAL_PDATA_CAP
        self._arena = bytearray(_FIRST_ARENA)
        self._spare: list[bytearray] = []
        self._offered = 0  # size of the last buffer handed out
        self._streaming = False  # a read filled all the room it was given since the last renew
        self._start = 0  # first byte of the arena not yet framed (start of a partial PDU)
        self._end = 0  # end of the received bytes in the arena
        self._ready: deque[_Ready] = deque()
        self._error: RemoteProtocolError | None = None  # a framing error: the stream is lost

    # --- the transport's side -----------------------------------------------------------------

    def get_buffer(self) -> memoryview:
        """Where the transport should read the next bytes into (never empty)."""
        if self._error is not None:
            # A sink of its own (views of the arena may still be queued): what comes after a
            # bad header, or after our A-ABORT, is dropped. One sink for every receiver (the
            # event loop's thread alone reads into them, and nobody reads them): an acceptor
            # drops what a peer sends until it closes (Sta13), and 3,000 such connections
            # held 64 KiB each.
            return _DROPPED
        arena = self._arena
        if len(arena) - self._end < max(_MIN_ROOM, len(arena) >> 3):
            self._renew()
            arena = self._arena
        self._offered = len(arena) - self._end
        return memoryview(arena)[self._end :]

    def buffer_updated(self, count: int) -> None:
        """`count` bytes were written at the start of the last buffer from get_buffer()."""
        if self._error is not None or count <= 0:
            return
        self._end += count
        if count >= self._offered:
            self._streaming = True
        self._frame()

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Take bytes read elsewhere (tests, what a stream read before we took over)."""
        view = memoryview(data).cast("B")
        while view:
            target = self.get_buffer()
            count = min(len(target), len(view))
            target[:count] = view[:count]
            del target
            self.buffer_updated(count)
            view = view[count:]

    def drop(self) -> None:
        """From now on, read bytes are discarded (after an invalid PDU, the stream cannot be
        followed)."""
        if self._error is None:
            self._error = RemoteProtocolError("input dropped")
        self._ready.clear()
        self._start = self._end = 0

    def release(self) -> None:
        """The connection is closed: let go of the arenas now (views handed out keep theirs
        alive), not when the association is collected, which a reference cycle can postpone
        to the next full collection: waves of peers that never associated held hundreds of
        MB that way. Also called when nothing more will be read but dropped (after our
        A-ABORT): the arenas are not needed for that."""
        self.drop()
        self._spare.clear()
        self._arena = bytearray(_MIN_ROOM)

    # --- the association's side ---------------------------------------------------------------

    def next_pdu(self) -> PDU | None:
        """The next complete PDU, or None; raises RemoteProtocolError (see the class doc)."""
        ready = self._ready
        if not ready:
            return None
        item = ready[0]
        if isinstance(item, RemoteProtocolError):
            raise item  # framing error: stays, raised on every call
        ready.popleft()
        pdu_type, body = item
        return decode_pdu(pdu_type, body)

    def pending(self) -> int:
        """Bytes received but not yet part of a complete PDU (> 0: the peer is mid-PDU)."""
        return self._end - self._start

    # --- framing ------------------------------------------------------------------------------

    def _frame(self) -> None:
        arena = self._arena
        caps = self._caps
        ready = self._ready
        pos, end = self._start, self._end
        view: memoryview | None = None
        while end - pos >= 1:
            pdu_type = arena[pos]
            cap = caps.get(pdu_type)
            if cap is None:
                self._fail(unknown_pdu(arena[pos : min(pos + 4, end)]))
                return
            if end - pos < _HEADER.size:
                break
            length: int = _HEADER.unpack_from(arena, pos)[1]
            if length > cap:
                field = f"{PDU_NAMES[pdu_type]} length"
                self._fail(
                    RemoteProtocolError(
                        f"{field}: declared {length} bytes, the limit is {cap}",
                        field=field,
                        abort_reason=AbortReason.INVALID_PDU_PARAMETER_VALUE,
                    )
                )
                return
            body_end = pos + _HEADER.size + length
            if body_end > end:
                break
            if view is None:
                view = memoryview(arena).toreadonly()
            ready.append((pdu_type, view[pos + _HEADER.size : body_end]))
            pos = body_end
        self._start = pos

    def _renew(self) -> None:
        """A new arena, with the partial PDU at the end of the old one moved to its start.
        Twice the size of the old one while reads come back full (data is streaming in), else
        small again."""
        start, end = self._start, self._end
        partial = end - start
        size = min(_MAX_ARENA, 2 * len(self._arena)) if self._streaming else _FIRST_ARENA
        if partial >= _HEADER.size:
            # Room for the whole PDU when it fits in an arena; beyond that (only when a large
            # or unlimited max PDU was advertised) grow with what actually arrived.
            total = _HEADER.size + _HEADER.unpack_from(self._arena, start)[1]
            size = max(size, min(total, max(_MAX_ARENA, 2 * partial)) + _MIN_ROOM)
        old = self._arena
        arena = self._reusable(size)
        if partial:
            arena[:partial] = memoryview(old)[start:end]
        if len(old) == _MAX_ARENA:
            spare = self._spare
            if len(spare) >= _SPARE_ARENAS:
                del spare[0]
            spare.append(old)
        self._arena = arena
        self._start, self._end = 0, partial
        self._streaming = False

    def _reusable(self, size: int) -> bytearray:
        """A retired arena of `size` that no view refers to any more, else a new one."""
        if size == _MAX_ARENA:
            spare = self._spare
            for index in range(len(spare)):
                arena = spare[index]
                # Referenced by the list, `arena` and the call only: no view of it is left
                # (a view holds a reference through its buffer), so it can be written again.
                if sys.getrefcount(arena) == 3:
                    del spare[index]
                    return arena
        return bytearray(size)

    def _fail(self, error: RemoteProtocolError) -> None:
        self._ready.append(error)
        self._error = error
        self._start = self._end = 0
