"""One association over one TCP connection: the asyncio side of the sans-IO core.

The association takes the connection over from the asyncio streams it is given: its own
BufferedProtocol has the socket read straight into the PDU buffers (transport.receiver), and
each complete PDU goes through the Upper Layer state machine, whose effects are carried out at
once. DIMSE events (a complete command, then data-set fragments) are queued for the service
layer, which pulls them with `receive()`; the queue is bounded (reading pauses when it is
full), so a peer that sends faster than we consume is slowed by TCP, never by our memory.
Writes go straight to the socket; when the kernel takes only part, sending waits until the
rest is gone (so a data-set buffer can be reused, and nothing piles up in memory).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, Protocol

from netdicom.core.acse import Negotiated, negotiate_requestor
from netdicom.core.address import host_port
from netdicom.core.dimse import (
    CommandReceived,
    DatasetFragment,
    DimseMessage,
    MessageAssembler,
    MessageIdAllocator,
    encode_command,
    max_fragment_length,
)
from netdicom.core.errors import (
    AbortReason,
    AssociationAborted,
    AssociationRejected,
    ConnectionClosed,
    LocalProtocolError,
    NetDicomError,
    NoAcceptedContext,
    RemoteProtocolError,
    TimeoutExpired,
)
from netdicom.core.pdu import (
    PDU,
    AbortPDU,
    AssociateAC,
    AssociateRJ,
    AssociateRQ,
    PDataTF,
    PDUType,
    ReleaseRP,
    ReleaseRQ,
)
from netdicom.core.pdu.codec import encode_pdata_header, encode_pdu
from netdicom.core.records import frozen
from netdicom.core.ul.effects import (
    CloseTransport,
    ConnectTransport,
    Effect,
    Indicate,
    Indication,
    SendPDU,
    StartArtim,
    StopArtim,
)
from netdicom.core.ul.machine import StateMachine
from netdicom.core.ul.states import Event, State
from netdicom.transport.config import TransportConfig
from netdicom.transport.receiver import PduReceiver

if TYPE_CHECKING:
    # Tests only (fault injection): not imported on a real run.
    from netdicom.transport.faults import FaultInjector

log = logging.getLogger("netdicom.association")

_EVENT_FOR_PDU = {
    PDUType.ASSOCIATE_RQ: Event.EVT6,
    PDUType.ASSOCIATE_AC: Event.EVT3,
    PDUType.ASSOCIATE_RJ: Event.EVT4,
    PDUType.P_DATA_TF: Event.EVT10,
    PDUType.RELEASE_RQ: Event.EVT12,
    PDUType.RELEASE_RP: Event.EVT13,
    PDUType.ABORT: Event.EVT16,
}

# Received DIMSE events held before the reader stops reading (TCP then slows the peer): up to
# this many data-set bytes (what the events refer to in the receive buffers) and this many
# events; reading resumes below half of both. Counting bytes, not events, bounds memory
# whatever the max PDU (it was 32 events: 32 PDUs' worth), and lets small instances (a command
# and 2 KB each) queue by the hundred instead of pausing and resuming reading every few.
_QUEUE_HIGH_BYTES = 4 << 20
# The largest data set receive_dataset holds (identifiers: a C-FIND with a list of 10,000 UIDs
# is under 1 MiB), and what each fragment counts for at the least (its objects' overhead).
MAX_HELD_DATASET = 4 << 20
_FRAGMENT_COST = 64
# While a message arrives, the DIMSE timer restarts only once this many of its bytes came since
# it last restarted (or when the message ends), not on every fragment: restarted per fragment,
# it let a peer hold an association (one of serve's --max-associations) for as long as it
# liked with a 64-byte fragment every timeout - 1 s (slowloris, walkthrough 3). A peer must
# now keep up 64 KiB per DIMSE timeout, ~1 KiB/s with the 60 s default: any real link is far
# faster, and a fragment of our default max PDU (256 KiB) restarts it alone. Arithmetic on
# what receive() already pops; no timer per fragment.
DIMSE_MIN_PROGRESS = 64 << 10
_QUEUE_HIGH_EVENTS = 1024
# A data set up to this size goes out in the same write as its command (two PDUs, one send):
# small stores are latency-bound.
_JOIN_LIMIT = 16384
# Why reading is paused (bits): the event queue is full; the fault injector is deciding.
_PAUSED_QUEUE = 1
_PAUSED_FAULTS = 2
# Seconds a closed connection may keep trying to deliver its last bytes (an A-ABORT, say) to a
# peer that does not read, before the socket is torn down: a peer must not hold our fd open.
_CLOSE_GRACE = 2.0

# What a connection closed by the peer (Evt17) means, by the state it arrived in.
_CLOSED_IN = {
    State.STA2: "before sending an A-ASSOCIATE-RQ",
    State.STA5: "without answering the A-ASSOCIATE-RQ",
    State.STA6: "without release or abort",
    State.STA7: "without answering the A-RELEASE-RQ",
    State.STA8: "before we answered its A-RELEASE-RQ",
}


# A PDU that came when it may not, and when that was, in the words of PS3.8 (error texts).
_PDU_WORDS: Final = {
    AssociateRQ: "an A-ASSOCIATE-RQ",
    AssociateAC: "an A-ASSOCIATE-AC",
    AssociateRJ: "an A-ASSOCIATE-RJ",
    PDataTF: "a P-DATA-TF",
    ReleaseRQ: "an A-RELEASE-RQ",
    ReleaseRP: "an A-RELEASE-RP",
    AbortPDU: "an A-ABORT",
}
_STATE_WORDS: Final = {
    State.STA2: "before any A-ASSOCIATE-RQ",
    State.STA5: "while we awaited its answer to our A-ASSOCIATE-RQ",
    State.STA6: "after the association was established",
    State.STA7: "while we awaited its A-RELEASE-RP",
    State.STA8: "after its own A-RELEASE-RQ",
    State.STA9: "during a release collision",
    State.STA10: "during a release collision",
    State.STA11: "during a release collision",
    State.STA12: "during a release collision",
    State.STA13: "after the association had ended",
}


@frozen
class ReleaseRequested:
    """The peer asked to release; the service loop answers once earlier requests are done."""


ReceivedEvent = CommandReceived | DatasetFragment | ReleaseRequested


class AcceptorDecision(Protocol):
    def __call__(self, rq: AssociateRQ) -> tuple[AssociateAC, Negotiated] | AssociateRJ: ...


class DatasetSource(Protocol):
    """A data set to send without holding it in memory: `length` bytes read in pieces.

    A source may also have `readinto(buffer) -> int` (as a raw file has): the association then
    reads each fragment straight into the buffer it sends from, with no copy."""

    @property
    def length(self) -> int: ...

    def read(self, size: int) -> bytes: ...


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


def _describe_pdv(context_id: int, is_command: bool, last: bool, length: int) -> str:
    """What the trace shows of a P-DATA-TF sent by the fast path (no PDataTF value is built)."""
    what = "command" if is_command else "data set"
    return f"P-DATA-TF context {context_id}, {what}{' (last)' if last else ''}, {length} bytes"


def _take_over(
    reader: asyncio.StreamReader, transport: asyncio.BaseTransport
) -> tuple[bytes, bool]:
    """What the stream had read before the association took the connection over, and whether
    it had seen the end. (The StreamReader keeps them in private attributes; they are read
    defensively so that a different implementation only loses this early-data hand-over.)"""
    buffered = getattr(reader, "_buffer", None)
    data = b""
    if isinstance(buffered, bytearray) and buffered:
        data = bytes(buffered)
        buffered.clear()
    ended = bool(getattr(reader, "_eof", False)) or reader.exception() is not None
    # A TLS transport that is already closing may have queued connection_lost for the stream's
    # protocol, not ours (asyncio's SSL layer binds the callee when it schedules the call):
    # a TLS 1.3 server refusing our certificate right after the handshake would otherwise
    # leave us waiting for an answer until the ACSE timeout. Closing here is idempotent.
    return data, ended or transport.is_closing()


class _Link(asyncio.BufferedProtocol):
    """The transport's protocol once an association owns the connection: the socket reads into
    the association's PDU buffers; flow-control and close events go to the association. The
    streams' own protocol still hears of the close, so `StreamWriter.wait_closed()` works."""

    __slots__ = ("_assoc", "_quickack", "_rx", "_stream")

    def __init__(self, assoc: Association, rx: PduReceiver, stream: asyncio.BaseProtocol) -> None:
        self._assoc = assoc
        self._rx = rx
        self._stream = stream
        self._quickack = _quickack(assoc._transport)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._rx.get_buffer()

    def buffer_updated(self, nbytes: int) -> None:
        if self._quickack is not None:
            self._quickack()
        self._assoc._received(nbytes)

    def eof_received(self) -> bool:
        self._assoc._eof_received()
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        try:
            self._assoc._connection_lost()
        finally:
            with contextlib.suppress(Exception):
                self._stream.connection_lost(exc)

    def pause_writing(self) -> None:
        self._assoc._write_paused = True

    def resume_writing(self) -> None:
        self._assoc._resume_writing()


def _quickack(transport: asyncio.BaseTransport) -> Callable[[], None] | None:
    """What acknowledges each read at once (TCP_QUICKACK, Linux; None elsewhere).

    dcmtk as shipped writes with Nagle's algorithm on (TCP_NODELAY unset in its environment):
    the second small segment of a message waits until the first is acknowledged, and Linux
    delays that acknowledgment by up to 40 ms, so every message cost ~45 ms. A peer's Nagle is
    not ours to turn off, but acknowledging at once releases it: storescu -> serve, getscu <-
    serve and netdicom store -> storescp went from 9-10 s to 0.2-0.3 s for 200 small instances.
    The option is not sticky (the kernel falls back to delayed ACKs), so it is set again
    after every read: one system call per read."""
    option = getattr(socket, "TCP_QUICKACK", None)
    sock = transport.get_extra_info("socket")
    if option is None or sock is None:
        return None
    setsockopt = sock.setsockopt

    def acknowledge() -> None:
        with contextlib.suppress(OSError):  # closing meanwhile: nothing to acknowledge
            setsockopt(socket.IPPROTO_TCP, option, 1)

    return acknowledge


def _tune_socket(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is None:
        return
    with contextlib.suppress(OSError):
        # Nagle's algorithm against a delayed-ACK peer costs ~40-200 ms per small message.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # Hospital firewalls drop quiet connections while a long retrieve is pending.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)


class Association:
    """An association in progress, as requestor or acceptor."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        requestor: bool,
        config: TransportConfig,
        decide: AcceptorDecision | None = None,
        faults: FaultInjector | None = None,
    ) -> None:
        self._writer = writer
        self._transport = writer.transport
        self.requestor = requestor
        self.config = config
        self._trace = config.trace
        self._decide = decide
        self._faults = faults
        self._machine = StateMachine(requestor=requestor)
        self._rx = PduReceiver(config.max_pdu)
        self._assembler: MessageAssembler | None = None
        self.negotiated: Negotiated | None = None
        self.associate_rq: AssociateRQ | None = None
        self.rejection: AssociateRJ | None = None
        self.message_ids = MessageIdAllocator()
        peer = writer.get_extra_info("peername")
        self.peer: str = host_port(peer[0], peer[1]) if isinstance(peer, tuple) else str(peer)
        self._events: deque[ReceivedEvent] = deque()
        self._queued_bytes = 0  # data-set bytes the queued events refer to
        self._waiter: asyncio.Future[None] | None = None
        # The DIMSE timer within a message (see DIMSE_MIN_PROGRESS): when it last restarted,
        # None when the next wait restarts it; the message's bytes popped since.
        self._dimse_since: float | None = None
        self._dimse_progress = 0
        self._end: NetDicomError | None = None
        self._loop = asyncio.get_running_loop()
        self._established: asyncio.Future[Negotiated] = self._loop.create_future()
        self._released: asyncio.Future[None] = self._loop.create_future()
        self._closed = asyncio.Event()
        self._artim: asyncio.TimerHandle | None = None
        self._send_lock = asyncio.Lock()
        self._reader_task: asyncio.Task[None] | None = None
        self._protocol_error: RemoteProtocolError | None = None
        self._deaf = False
        self._event: Event | None = None
        self._event_pdu: PDU | None = None
        self._event_state = State.STA1
        # Set while the service layer is working on a request, so the idle timer does not fire
        # while, say, a long C-GET is being answered.
        self.busy = False
        # Installed by whoever waits in receive(): called from the protocol callback with a
        # command that arrives when nothing is queued before it, it returns True when it dealt
        # with the command there and then (see send_now), False to have it queued as usual.
        # serve answers a C-ECHO-RQ this way, and `echo --repeat` sends its next C-ECHO-RQ on
        # each C-ECHO-RSP: a turn of the event loop and a task switch fewer per message.
        self.answer_inline: Callable[[CommandReceived], bool] | None = None
        self.outcome = "open"
        # What the log line of an ended association accounts for (serve): the requests the
        # service loop took, by DIMSE service ("C-STORE": 3), and when it began.
        self.requests: dict[str, int] = {}
        self.began = time.monotonic()
        self._last_activity = 0.0
        self._idle_timer: asyncio.TimerHandle | None = None
        _tune_socket(writer)
        # Reading: paused (bits of _PAUSED_*) until start_*; the stream's early bytes are kept.
        self._paused = 0
        self._reading = True
        self._lost = False
        self._eof_seen = False
        self._early: tuple[bytes, bool] | None = _take_over(reader, writer.transport)
        # Writing: our own flow control replaces StreamWriter.drain().
        self._write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        # Plain TCP copies what the kernel did not take, and pauses us until it is gone: a
        # send buffer can then be reused. (TLS encrypts a copy at once; its limits stay.)
        self._write_through = (
            config.ssl_context is None and writer.get_extra_info("sslcontext") is None
        )
        self._send_buffer: bytearray | None = None
        transport = self._transport
        self._set_paused(_PAUSED_FAULTS, True)
        transport.set_protocol(_Link(self, self._rx, transport.get_protocol()))
        if self._write_through:
            transport.set_write_buffer_limits(high=0)

    # --- lifecycle ------------------------------------------------------------------------

    @property
    def state(self) -> State:
        return self._machine.state

    @property
    def is_established(self) -> bool:
        return self._machine.state is State.STA6

    @property
    def end_reason(self) -> NetDicomError | None:
        return self._end

    def start_requestor(self, rq: AssociateRQ) -> None:
        """Evt1 then Evt2: the connection is already open when this is called."""
        self.associate_rq = rq
        self._run(self._machine.handle(Event.EVT1, rq))
        self._run(self._machine.handle(Event.EVT2))
        self._start_reading()

    def start_acceptor(self) -> None:
        """Evt5: a connection came in; ARTIM runs until the A-ASSOCIATE-RQ arrives."""
        self._run(self._machine.handle(Event.EVT5))
        self._start_reading()

    async def wait_established(self, timeout: float | None) -> Negotiated:
        try:
            return await asyncio.wait_for(asyncio.shield(self._established), timeout)
        except TimeoutError:
            self.abort()
            raise TimeoutExpired(
                f"no answer to the association request within {timeout:g} s (ACSE timeout)"
            ) from None

    async def wait_closed(self) -> None:
        await self._closed.wait()
        if self._reader_task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader_task

    # --- sending --------------------------------------------------------------------------

    async def send_message(
        self,
        context_id: int,
        message: DimseMessage | bytes,
        dataset: bytes | memoryview | DatasetSource | None = None,
    ) -> None:
        """Send one DIMSE message: its command (a message, or a command set already encoded),
        then its data set, in separate P-DATA-TF PDUs."""
        if self.negotiated is None:
            raise LocalProtocolError("association is not established")
        max_fragment = max_fragment_length(self.negotiated.max_pdu_to_peer)
        command = message if isinstance(message, bytes) else encode_command(message)
        async with self._send_lock:
            self._check_can_send()
            if dataset is None:
                await self._send_fragments(context_id, True, memoryview(command), max_fragment)
                return
            length = len(dataset) if isinstance(dataset, bytes | memoryview) else dataset.length
            if length <= _JOIN_LIMIT and len(command) <= max_fragment and length <= max_fragment:
                await self._send_joined(context_id, command, dataset, length)
                return
            await self._send_fragments(context_id, True, memoryview(command), max_fragment)
            if isinstance(dataset, bytes | memoryview):
                await self._send_fragments(context_id, False, memoryview(dataset), max_fragment)
            else:
                await self._send_stream(context_id, dataset, max_fragment)

    def send_now(self, context_id: int, message: DimseMessage) -> bool:
        """Send a message without a data set at once, without waiting, when that is possible:
        no other message is being sent, the transport takes more and the command fits one
        fragment. False when it is not (send it with send_message then)."""
        negotiated = self.negotiated
        if (
            negotiated is None
            or self._send_lock.locked()
            or self._write_paused
            or self._end is not None
            or self._machine.state not in (State.STA6, State.STA8)
        ):
            return False
        command = encode_command(message)
        if len(command) > max_fragment_length(negotiated.max_pdu_to_peer):
            return False
        self._write_pdv(context_id, True, True, command)
        return True

    def _check_can_send(self) -> None:
        if self._end is not None:
            raise self._end
        # P-DATA may be sent in Sta6, and in Sta8 after the peer asked to release (PS3.8 AR-7).
        # The fast path writes P-DATA-TF directly instead of building a PDataTF value per
        # fragment; DT-1 and AR-7 change no state, so the machine is only consulted for the state.
        if self._machine.state not in (State.STA6, State.STA8):
            raise LocalProtocolError(f"cannot send data in {self._machine.state.name}")

    async def _send_joined(
        self,
        context_id: int,
        command: bytes,
        dataset: bytes | memoryview | DatasetSource,
        length: int,
    ) -> None:
        """A small message: command and data set, two PDUs, written at once."""
        if isinstance(dataset, bytes | memoryview):
            data = dataset
        else:
            if length % 2:
                raise LocalProtocolError("a data set must have an even length (PS3.5 §7.1)")
            pieces = []
            missing = length
            while missing:
                piece = dataset.read(missing)
                if not piece:
                    raise LocalProtocolError("data set source ended early")
                pieces.append(piece)
                missing -= len(piece)
            data = b"".join(pieces)
        if self._faults is not None:
            self._write_pdv(context_id, True, True, command)
            self._write_pdv(context_id, False, True, data)
        else:
            if self._end is not None:
                raise self._end
            if self._trace is not None:
                self._trace("send", _describe_pdv(context_id, True, True, len(command)))
                self._trace("send", _describe_pdv(context_id, False, True, length))
            self._transport.write(
                b"".join(
                    (
                        encode_pdata_header(context_id, True, True, len(command)),
                        command,
                        encode_pdata_header(context_id, False, True, length),
                        data,
                    )
                )
            )
        await self._drain()

    async def _send_fragments(
        self, context_id: int, is_command: bool, data: memoryview, max_fragment: int
    ) -> None:
        total = len(data)
        offset = 0
        while True:
            end = min(offset + max_fragment, total)
            last = end >= total
            self._write_pdv(context_id, is_command, last, data[offset:end])
            if self._write_paused or self._transport.is_closing():
                await self._drain()
            offset = end
            if last:
                break
        await self._drain()

    async def _send_stream(self, context_id: int, source: DatasetSource, max_fragment: int) -> None:
        remaining = source.length
        if remaining % 2:
            raise LocalProtocolError("a data set must have an even length (PS3.5 §7.1)")
        readinto = getattr(source, "readinto", None)
        if readinto is not None and self._faults is None:
            await self._send_stream_into(context_id, readinto, remaining, max_fragment)
            return
        while True:
            piece = source.read(min(max_fragment, remaining))
            if not piece and remaining:
                raise LocalProtocolError("data set source ended early")
            remaining -= len(piece)
            self._write_pdv(context_id, False, remaining == 0, piece)
            if self._write_paused or self._transport.is_closing():
                await self._drain()
            if remaining == 0:
                break
        await self._drain()

    async def _send_stream_into(
        self,
        context_id: int,
        readinto: Callable[[memoryview], int | None],
        remaining: int,
        max_fragment: int,
    ) -> None:
        """Each fragment is read into a buffer just after room for its 12-byte header, then
        written with it: one read and one send per PDU, no copy of the data in between."""
        size = min(max_fragment, remaining) + 12
        buffer = self._send_buffer
        if buffer is None or len(buffer) < size or not self._write_through:
            # Plain TCP: the kernel has taken everything before we reuse it (see _drain).
            buffer = bytearray(size)
            if self._write_through:
                self._send_buffer = buffer
        view = memoryview(buffer)
        trace = self._trace
        while remaining:
            count = min(max_fragment, remaining)
            filled = 0
            while filled < count:
                got = readinto(view[12 + filled : 12 + count])
                if not got:
                    raise LocalProtocolError("data set source ended early")
                filled += got
            remaining -= count
            if self._end is not None:
                raise self._end
            last = remaining == 0
            view[:12] = encode_pdata_header(context_id, False, last, count)
            if trace is not None:
                trace("send", _describe_pdv(context_id, False, last, count))
            self._transport.write(view[: 12 + count])
            if self._write_paused or self._transport.is_closing():
                await self._drain()
            if not self._write_through and remaining:
                buffer = bytearray(size)
                view = memoryview(buffer)
        await self._drain()

    def _write_pdv(
        self, context_id: int, is_command: bool, last: bool, piece: bytes | memoryview
    ) -> None:
        if self._end is not None:
            raise self._end
        header = encode_pdata_header(context_id, is_command, last, len(piece))
        if self._trace is not None:
            self._trace("send", _describe_pdv(context_id, is_command, last, len(piece)))
        if self._faults is not None:
            self._faults.send(self, PDUType.P_DATA_TF, header + bytes(piece))
            return
        # One send() per PDU: a lone 12-byte header would be a packet of its own.
        self._transport.write(b"".join((header, piece)))

    async def _until_lost(self) -> None:
        """The transport is closing and we did not close it: a send failed (the peer reset
        or closed), and asyncio drops what we write from now on, logging "socket.send()
        raised exception." for each write, while the connection_lost it has scheduled has not
        reached us yet. Wait for it (it sets the end the send raises) instead of writing the
        rest of the data set into the void and reporting it sent."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_CLOSE_GRACE):
                await self._closed.wait()
        if self._end is None:
            self._finish(ConnectionClosed(f"connection to {self.peer} lost while sending"))

    def _resume_writing(self) -> None:
        self._write_paused = False
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _drain(self) -> None:
        """Wait until the transport has handed everything written to the kernel."""
        if self._transport.is_closing() and self._end is None:
            await self._until_lost()
        if not self._write_paused:
            # Everything went straight to the socket (the usual case): no task, no timer.
            if self._end is not None:
                raise self._end
            return
        timeout = self.config.timeouts.dimse
        while self._write_paused and not self._lost:
            waiter: asyncio.Future[None] = self._loop.create_future()
            self._drain_waiter = waiter
            timer = None if timeout is None else self._loop.call_later(timeout, _expire, waiter)
            try:
                await waiter
            except TimeoutError:
                # The peer stopped reading: without a bound a send would wait forever, holding
                # the association and its socket (PS3.8 leaves this to the implementation).
                self._finish(
                    TimeoutExpired(
                        f"{self.peer} read nothing we sent for {timeout:g} s (DIMSE timeout)"
                    )
                )
                self.abort(source=2)
                raise self._end from None  # type: ignore[misc]
            finally:
                self._drain_waiter = None
                if timer is not None:
                    timer.cancel()
        if self._lost and self._end is None:
            self._finish(ConnectionClosed(f"connection to {self.peer} lost while sending"))
        if self._end is not None:
            raise self._end

    def drop_connection(self) -> None:
        """Close the TCP connection with no PDU (fault injection, or a peer we give up on)."""
        self._close_transport()

    def write_raw(self, data: bytes) -> None:
        """Write bytes as they are (used by the fault injector once it has decided)."""
        if not self._transport.is_closing():
            self._transport.write(data)

    # --- receiving ------------------------------------------------------------------------

    async def receive(self, timeout: float | None = None) -> ReceivedEvent:
        """The next DIMSE event; raises when the association has ended and nothing is queued."""
        loop = asyncio.get_running_loop()
        while True:
            if self._events:
                event = self._events.popleft()
                if isinstance(event, DatasetFragment):
                    size = len(event.data)
                    self._queued_bytes -= size
                    progress = self._dimse_progress + size
                    self._dimse_progress = progress
                    if event.is_last or progress >= DIMSE_MIN_PROGRESS:
                        self._dimse_since = None
                else:
                    self._dimse_since = None  # a new message (or the release)
                if (
                    self._paused & _PAUSED_QUEUE
                    and len(self._events) < _QUEUE_HIGH_EVENTS // 2
                    and self._queued_bytes < _QUEUE_HIGH_BYTES // 2
                ):
                    self._set_paused(_PAUSED_QUEUE, False)
                return event
            if self._end is not None:
                raise self._end
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiter = waiter
            timer = None
            if timeout is not None:
                now = loop.time()
                since = self._dimse_since
                if since is None:
                    self._dimse_since = since = now
                    self._dimse_progress = 0
                timer = loop.call_later(since + timeout - now, _expire, waiter)
            try:
                await waiter
            except TimeoutError:
                assert timeout is not None
                self._dimse_since = None  # a caller that waits on gets a whole timeout
                progress = self._dimse_progress
                if progress:
                    raise TimeoutExpired(
                        f"{self.peer} sent {progress} bytes of the message in {timeout:g} s, "
                        f"fewer than the {DIMSE_MIN_PROGRESS} required (DIMSE timeout: too slow)"
                    ) from None
                raise TimeoutExpired(
                    f"no DIMSE message from {self.peer} within {timeout:g} s (DIMSE timeout)"
                ) from None
            finally:
                self._waiter = None
                if timer is not None:
                    timer.cancel()

    async def receive_dataset(
        self, timeout: float | None, limit: int = MAX_HELD_DATASET, what: str = "data set"
    ) -> bytes:
        """The data set announced by the last command, whole, for the small ones that are
        decoded in memory (identifiers, a response's data set; a C-STORE's is streamed).

        Raises RemoteProtocolError (the caller aborts) for a command in its place, or when it
        grows past `limit` bytes: each fragment counted as at least _FRAGMENT_COST, so that a
        peer cannot pile up empty or one-byte fragments for free, nor an endless identifier."""
        parts: list[bytes] = []
        cost = 0
        while True:
            event = await self.receive(timeout)
            if not isinstance(event, DatasetFragment):
                raise RemoteProtocolError(f"a command arrived inside the {what}")
            cost += max(len(event.data), _FRAGMENT_COST)
            if cost > limit:
                raise RemoteProtocolError(
                    f"{what} larger than {limit} bytes (or in too many fragments)",
                    field="data set length",
                )
            if event.data:
                parts.append(bytes(event.data))
            if event.is_last:
                return b"".join(parts)

    def keep_release(self, event: ReleaseRequested) -> None:
        """Put a release request back at the head of the queue. A service that meets it while
        it still owes answers (a C-FIND's matches, a C-MOVE's sub-operations) answers first;
        the service loop then answers the release (PS3.8 7.2: nothing in transit is lost).
        Nothing can queue behind it: a requestor sends no P-DATA after its A-RELEASE-RQ
        (Sta7, PS3.8 Table 9-10)."""
        self._events.appendleft(event)

    @property
    def release_queued(self) -> bool:
        """The peer's A-RELEASE-RQ is the next event (kept by `keep_release`)."""
        return bool(self._events) and isinstance(self._events[0], ReleaseRequested)

    def _push(self, event: ReceivedEvent) -> None:
        self._events.append(event)
        if isinstance(event, DatasetFragment):
            self._queued_bytes += len(event.data)
        if len(self._events) >= _QUEUE_HIGH_EVENTS or self._queued_bytes >= _QUEUE_HIGH_BYTES:
            self._set_paused(_PAUSED_QUEUE, True)
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # Reading: the transport calls _Link, which calls these (from the event loop).

    def _set_paused(self, reason: int, paused: bool) -> None:
        self._paused = self._paused | reason if paused else self._paused & ~reason
        want = not self._paused
        if want is self._reading or self._closed.is_set():
            return
        self._reading = want
        transport = self._transport
        assert isinstance(transport, asyncio.ReadTransport)
        with contextlib.suppress(Exception):  # a transport already closing: nothing to do
            if want:
                transport.resume_reading()
            else:
                transport.pause_reading()

    def _start_reading(self) -> None:
        early = self._early
        self._early = None
        if early is not None:
            data, ended = early
            if data:
                self._rx.feed(data)
            if self._faults is not None:
                self._fault_task_start()
            else:
                self._set_paused(_PAUSED_FAULTS, False)
                if data:
                    self._process_guarded()
            if ended:
                self._eof_received()
                self._close_transport()

    def _received(self, count: int) -> None:
        # Not activity yet: only a whole PDU is (see _process), or a peer trickling the bytes
        # of one between messages would hold the association past --idle-timeout.
        self._rx.buffer_updated(count)
        if self._deaf or self._closed.is_set():
            return
        if self._faults is not None:
            self._fault_task_start()
            return
        self._process_guarded()

    def _process_guarded(self) -> None:
        try:
            self._process()
        except Exception as exc:  # a bug here must not take the server down
            log.exception("internal error on association with %s", self.peer)
            self._finish(AssociationAborted(f"internal error: {exc}", source=2))
            self.abort(source=2)

    def _process(self) -> None:
        rx = self._rx
        trace = self._trace
        active = False
        while not self._closed.is_set() and not self._deaf:
            try:
                pdu = rx.next_pdu()
            except RemoteProtocolError as exc:
                self._invalid_pdu(exc)
                return
            if pdu is None:
                return
            if not active:  # one clock read per batch of whole PDUs: the idle timer's activity
                active = True
                self._last_activity = self._loop.time()
            if trace is not None:
                trace("recv", pdu)
            if pdu.pdu_type is PDUType.P_DATA_TF and self._machine.state is State.STA6:
                # PS3.8 Table 9-10: Evt10 in Sta6 is DT-2, a P-DATA indication and no change
                # of state, so the busiest path skips the table (as sending does).
                assert isinstance(pdu, PDataTF)
                self._on_data(pdu)
                continue
            self._handle(_EVENT_FOR_PDU[pdu.pdu_type], pdu)

    def _fault_task_start(self) -> None:
        # The fault injector decides asynchronously (a DELAY sleeps): reading pauses while it
        # works through what has arrived, in order.
        self._set_paused(_PAUSED_FAULTS, True)
        if self._reader_task is None or self._reader_task.done():
            self._reader_task = asyncio.create_task(self._fault_loop())

    async def _fault_loop(self) -> None:
        faults = self._faults
        assert faults is not None
        rx = self._rx
        try:
            while not self._closed.is_set() and not self._deaf:
                try:
                    pdu = rx.next_pdu()
                except RemoteProtocolError as exc:
                    self._invalid_pdu(exc)
                    break
                if pdu is None:
                    break
                self._last_activity = self._loop.time()
                if self._trace is not None:
                    self._trace("recv", pdu)
                verdict = await faults.on_receive(self, pdu)
                if isinstance(verdict, RemoteProtocolError):
                    self._invalid_pdu(verdict)
                    break
                if verdict is None or self._closed.is_set():
                    continue
                self._handle(_EVENT_FOR_PDU[verdict.pdu_type], verdict)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug here must not take the server down
            log.exception("internal error on association with %s", self.peer)
            self._finish(AssociationAborted(f"internal error: {exc}", source=2))
            self.abort(source=2)
        finally:
            self._set_paused(_PAUSED_FAULTS, False)

    def _eof_received(self) -> None:
        if self._eof_seen or self._closed.is_set():
            return
        self._eof_seen = True
        self._last_activity = self._loop.time()
        self._peer_closed()

    def _connection_lost(self) -> None:
        self._lost = True
        if not self._eof_seen and not self._closed.is_set():
            # Reset, or closed under TLS: the peer is gone all the same.
            self._eof_seen = True
            self._peer_closed()
        self._stop_idle()
        self._close_transport()
        self._resume_writing()
        self._wake()

    def _peer_closed(self) -> None:
        """Evt17: report a peer that hung up as "closed", not as an abort or a timeout."""
        where = _CLOSED_IN.get(self._machine.state)
        if where is not None:
            if self.outcome == "open":
                self.outcome = "closed by peer"
            partial = self._rx.pending()
            if partial:
                # It did answer, or begin to: a PDU cut short is not silence (and no hint
                # about TLS: the peer speaks DICOM).
                where = f"in the middle of a PDU ({partial} bytes of it came)"
            self._finish(ConnectionClosed(f"{self.peer} closed the connection {where}"))
        self._handle(Event.EVT17)

    def _invalid_pdu(self, exc: RemoteProtocolError) -> None:
        """Evt19: answer per Table 9-10 (A-ABORT with the decoder's reason, or close)."""
        log.debug("invalid PDU from %s: %s", self.peer, exc)
        self._protocol_error = exc
        if self.outcome == "open":
            # What the log line says of the association: it never was "open" after this.
            self.outcome = f"aborted: invalid PDU: {exc}"
        self._handle(Event.EVT19, abort_reason=exc.abort_reason)
        # After an invalid PDU the stream cannot be followed reliably (and answering each
        # later piece of garbage with another A-ABORT helps nobody): what the peer sends from
        # now on is read and dropped; ARTIM (Sta13) bounds the wait for its close.
        self._deaf = True
        self._rx.drop()

    # Idle supervision (serve only): an established association with no traffic and nothing
    # in progress is aborted. One timer, re-armed lazily from the time of the last read, so
    # the hot path only stores a float. ARTIM covers the states before and after (§9.1.5).

    def _arm_idle(self) -> None:
        idle = self.config.timeouts.idle
        if idle is None or self.requestor:
            return
        loop = asyncio.get_running_loop()
        self._last_activity = loop.time()
        self._idle_timer = loop.call_later(idle, self._idle_check)

    def _stop_idle(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None

    def _idle_check(self) -> None:
        idle = self.config.timeouts.idle
        assert idle is not None
        loop = asyncio.get_running_loop()
        if self.busy or self._events or self._paused & _PAUSED_QUEUE:
            # Work in progress (or queued for the service): idleness starts when it ends.
            self._last_activity = loop.time()
        due = self._last_activity + idle
        if loop.time() < due:
            self._idle_timer = loop.call_at(due, self._idle_check)
            return
        self._idle_timer = None
        partial = self._rx.pending()
        what = f"stopped {partial} bytes into a PDU" if partial else "sent nothing"
        log.info("aborting idle association with %s: peer %s", self.peer, what)
        self._finish(TimeoutExpired(f"peer {self.peer} {what} for {idle:g} s (idle timeout)"))
        # Quiet for the whole idle timeout, the peer has nothing unread in our buffer (the close
        # is a FIN, not a reset), and it may well be gone: its slot is not held ARTIM longer.
        self.abort(source=2, reason=AbortReason.NOT_SPECIFIED, linger=False)

    # --- the state machine ----------------------------------------------------------------

    def _handle(
        self,
        event: Event,
        pdu: PDU | None = None,
        *,
        abort_reason: AbortReason = AbortReason.NOT_SPECIFIED,
    ) -> None:
        # Kept for the messages of the indications this event causes.
        self._event = event
        self._event_pdu = pdu
        self._event_state = self._machine.state
        self._run(self._machine.handle(event, pdu, abort_reason=abort_reason))

    def _run(self, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, SendPDU):
                self._send_pdu(effect.pdu)
            elif isinstance(effect, StartArtim):
                self._start_artim()
            elif isinstance(effect, StopArtim):
                self._stop_artim()
            elif isinstance(effect, CloseTransport):
                self._close_transport()
            elif isinstance(effect, Indicate):
                self._indicate(effect.kind, effect.pdu)
            elif isinstance(effect, ConnectTransport):
                pass  # the connection is opened before the machine starts (see client.py)

    def _send_pdu(self, pdu: PDU) -> None:
        data = encode_pdu(pdu)
        if self._trace is not None:
            self._trace("send", pdu)
        if self._faults is not None:
            self._faults.send(self, pdu.pdu_type, data)
            return
        self.write_raw(data)

    def _start_artim(self) -> None:
        self._stop_artim()
        loop = asyncio.get_running_loop()
        self._artim = loop.call_later(self.config.timeouts.artim, self._artim_expired)

    def _stop_artim(self) -> None:
        if self._artim is not None:
            self._artim.cancel()
            self._artim = None

    def _artim_expired(self) -> None:
        self._artim = None
        if self._machine.state is State.STA2:
            self.outcome = "closed: no A-ASSOCIATE-RQ within the ARTIM timeout"
            self._finish(TimeoutExpired(f"{self.peer} sent no A-ASSOCIATE-RQ (ARTIM expired)"))
        self._handle(Event.EVT18)
        self._close_transport()

    def _close_transport(self) -> None:
        if self._closed.is_set():
            return
        self._stop_artim()
        self._stop_idle()
        self._closed.set()
        with contextlib.suppress(Exception):
            transport = self._transport
            transport.close()
            if transport.get_write_buffer_size():
                # close() waits until the buffer is flushed, which a peer that does not read
                # would postpone forever: give it a moment, then drop the connection.
                asyncio.get_running_loop().call_later(_CLOSE_GRACE, transport.abort)
        self._rx.release()
        if self._end is None:
            self._finish(ConnectionClosed(f"connection to {self.peer} closed"))
        if not self._established.done():
            self._established.set_exception(self._end or ConnectionClosed("closed"))
            self._established.exception()  # mark retrieved: the caller may have gone
        if not self._released.done():
            self._released.set_exception(self._end or ConnectionClosed("closed"))
            self._released.exception()
        self._resume_writing()

    def _finish(self, reason: NetDicomError) -> None:
        if self._end is None:
            self._end = reason
        self._wake()
        # Whoever waits for the association or its release learns at once, not when the
        # connection finally closes (after AA-8 that is up to ARTIM later).
        for future in (self._established, self._released):
            if not future.done():
                future.set_exception(self._end)
                future.exception()  # mark retrieved: the caller may have gone

    def _indicate(self, kind: Indication, pdu: PDU | None) -> None:
        if kind is Indication.ASSOCIATE_REQUEST:
            assert isinstance(pdu, AssociateRQ)
            self._on_associate_request(pdu)
        elif kind is Indication.ASSOCIATE_ACCEPTED:
            assert isinstance(pdu, AssociateAC) and self.associate_rq is not None
            try:
                negotiated = negotiate_requestor(self.associate_rq, pdu)
            except RemoteProtocolError as exc:
                # The message names the A-ASSOCIATE-AC and what is wrong with it.
                self._finish(AssociationAborted(str(exc)))
                self.abort(source=2, reason=exc.abort_reason)
                return
            except NoAcceptedContext as exc:
                # Accepted at the ACSE level with nothing usable: say why, release politely.
                self.outcome = "no usable presentation context"
                if not self._established.done():
                    self._established.set_exception(exc)
                    self._established.exception()
                self._handle(Event.EVT11)
                return
            self._became_established(negotiated)
        elif kind is Indication.ASSOCIATE_REJECTED:
            assert isinstance(pdu, AssociateRJ)
            self.rejection = pdu
            self.outcome = "rejected"
            self._finish(AssociationRejected(pdu.result, pdu.source, pdu.reason))
        elif kind is Indication.DATA:
            assert isinstance(pdu, PDataTF)
            self._on_data(pdu)
        elif kind is Indication.RELEASE_REQUEST:
            if self._machine.state is State.STA9:
                # Release collision, requestor side: answer at once (PS3.8 AR-9).
                self._handle(Event.EVT14)
            else:
                self._push(ReleaseRequested())
        elif kind is Indication.RELEASE_CONFIRMED:
            if self._machine.state is State.STA12:
                # Release collision, acceptor side: our RP goes after theirs (PS3.8 AR-4).
                self._handle(Event.EVT14)
            self.outcome = "released"
            if not self._released.done():
                self._released.set_result(None)
            self._finish(ConnectionClosed("association released"))
        elif kind is Indication.ABORT:
            self.outcome = "aborted by peer"
            self._finish(AssociationAborted(f"{self.peer} aborted the association", source=0))
        elif kind is Indication.PROVIDER_ABORT:
            if self.outcome == "open":
                self.outcome = "aborted"
            self._finish(self._provider_abort_error(pdu))
        elif kind is Indication.TRANSPORT_CLOSED:
            self._close_transport()

    def _provider_abort_error(self, pdu: PDU | None) -> AssociationAborted:
        if self._event is Event.EVT16 and isinstance(pdu, AbortPDU):
            # AA-3: the peer's provider aborted; its reason is worth showing.
            return AssociationAborted(
                f"association with {self.peer} aborted (provider)",
                source=pdu.source,
                reason=pdu.reason,
            )
        if isinstance(pdu, AbortPDU):
            # AA-8: we aborted because of what the peer sent. The reason is left out so that it
            # is not reported as the peer's verdict.
            if self._protocol_error is not None:
                what = f"an invalid PDU ({self._protocol_error})"
            else:
                name = _PDU_WORDS.get(type(self._event_pdu), "a PDU")
                when = _STATE_WORDS.get(self._event_state, self._event_state.name)
                what = f"{name} {when}, which PS3.8 Table 9-10 does not allow"
            return AssociationAborted(
                f"{self.peer} sent {what}; we aborted the association", source=2
            )
        # AA-4: the connection went away under us.
        return AssociationAborted(f"connection to {self.peer} lost", source=2)

    def _on_associate_request(self, rq: AssociateRQ) -> None:
        self.associate_rq = rq
        if self._decide is None:
            self._handle(Event.EVT8, AssociateRJ(1, 1, 1))
            return
        decision = self._decide(rq)
        if isinstance(decision, AssociateRJ):
            self.rejection = decision
            self.outcome = f"rejected ({decision.result}, {decision.source}, {decision.reason})"
            self._handle(Event.EVT8, decision)
            self._finish(AssociationRejected(decision.result, decision.source, decision.reason))
            return
        ac, negotiated = decision
        self._handle(Event.EVT7, ac)
        self._became_established(negotiated)

    def _became_established(self, negotiated: Negotiated) -> None:
        self.negotiated = negotiated
        self._arm_idle()
        self._assembler = MessageAssembler(negotiated.accepted.keys())
        if not self._established.done():
            self._established.set_result(negotiated)

    def _on_data(self, pdu: PDataTF) -> None:
        assembler = self._assembler
        if assembler is None:  # cannot happen in Sta6/7 but keeps mypy and us honest
            return
        try:
            for pdv in pdu.pdvs:
                for event in assembler.feed(pdv):
                    inline = self.answer_inline
                    if (
                        inline is not None
                        and self._waiter is not None
                        and not self._events
                        and isinstance(event, CommandReceived)
                        and inline(event)
                    ):
                        continue
                    self._push(event)
        except RemoteProtocolError as exc:
            # PS3.8 §9.3.5 / Annex E violations: provider abort, reason 6 (invalid parameter).
            log.info("protocol error from %s: %s", self.peer, exc)
            self._finish(AssociationAborted(f"protocol error from {self.peer}: {exc}", source=2))
            self.abort(source=2, reason=exc.abort_reason)

    @property
    def lingering(self) -> bool:
        """Aborted by us and waiting for the peer to close (Sta13, ARTIM at most): no longer
        in service, so it holds no --max-associations slot and no shutdown grace."""
        return self._deaf and not self._closed.is_set() and not self.requestor

    # --- user primitives ------------------------------------------------------------------

    def answer_release(self) -> None:
        """Evt14: send A-RELEASE-RP for a ReleaseRequested the service loop has reached."""
        if self._machine.state in (State.STA8, State.STA9, State.STA12):
            self.outcome = "released"
            self._handle(Event.EVT14)
            self._finish(ConnectionClosed("association released by peer"))

    async def release(self) -> None:
        """Evt11: release, waiting at most the ACSE timeout for the reply, else abort."""
        if self._machine.state is State.STA8:
            # The peer asked first: its A-RELEASE-RQ came while we finished (unread, queued).
            # Answering it is our release (AR-4, PS3.8 Table 9-10); closing without the RP
            # looked like a dropped connection (A-P-ABORT) to the peer.
            self.answer_release()
            self._close_transport()
            return
        if self._machine.state is not State.STA6:
            self._close_transport()
            return
        self._handle(Event.EVT11)
        timeout = self.config.timeouts.acse
        try:
            await asyncio.wait_for(asyncio.shield(self._released), timeout)
        except TimeoutError:
            self.abort()
            raise TimeoutExpired(
                f"{self.peer} did not answer A-RELEASE-RQ within {timeout:g} s; aborted"
            ) from None
        except NetDicomError:
            if self.outcome != "released":
                raise
        finally:
            self._close_transport()

    def abort(self, *, source: int = 0, reason: int = 0, linger: bool = True) -> None:
        """Evt15: send A-ABORT (if the connection is still there) and close: at once for the
        requestor or with `linger` False, else once the peer has closed (ARTIM at most)."""
        if self._closed.is_set():
            return
        if self.outcome == "open":
            self.outcome = "aborted locally"
        self._finish(AssociationAborted("association aborted locally", source=source))
        state = self._machine.state
        if state in (State.STA1, State.STA13, State.STA4):
            self._close_transport()
            return
        if state is State.STA2:
            # No association yet: nothing to abort, just drop the connection (AA-2 style).
            self._close_transport()
            return
        self._run(self._machine.handle(Event.EVT15, AbortPDU(source=source, reason=reason)))
        if self.requestor or not linger:
            # Our own command stops here (an error, Ctrl-C, a timeout): the user is not kept
            # waiting for the peer to hang up. The abort was sent; drop the link.
            self._close_transport()
            return
        # The acceptor waits in Sta13 for the peer to close, ARTIM at most (AA-1, PS3.8
        # Table 9-10). Closing at once, with the peer's next PDU unread in our buffer, makes
        # the kernel answer with a TCP reset: a peer still sending then failed on "connection
        # reset" before it read our A-ABORT and its reason. What it sends meanwhile is read
        # and dropped. Calling abort() again closes at once (serve's shutdown does).
        self._deaf = True
        self._rx.release()
        self._events.clear()
        self._queued_bytes = 0
        self._set_paused(_PAUSED_QUEUE | _PAUSED_FAULTS, False)


async def open_stream(
    host: str, port: int, config: TransportConfig
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Open the TCP/TLS connection, mapping every failure to ConnectFailed/TimeoutExpired."""
    from netdicom.core.errors import ConnectFailed

    kwargs: dict[str, object] = {"limit": 1 << 20}
    if config.ssl_context is not None:
        kwargs["ssl"] = config.ssl_context
        kwargs["server_hostname"] = config.server_hostname or host
    try:
        return await asyncio.wait_for(
            asyncio.open_connection(host, port, **kwargs),  # type: ignore[arg-type]
            config.timeouts.connect,
        )
    except TimeoutError:
        raise TimeoutExpired(
            f"could not connect to {host_port(host, port)} within {config.timeouts.connect:g} s"
        ) from None
    except ConnectionRefusedError:
        raise ConnectFailed(
            f"connection to {host_port(host, port)} refused: is the peer listening on that port?"
        ) from None
    except OSError as exc:
        raise ConnectFailed(
            f"cannot connect to {host_port(host, port)}: {exc.strerror or exc}"
        ) from None


SendHook = Callable[[Association, PDUType, bytes], None]
