"""Splitting DIMSE messages into PDV fragments and putting received ones back together.

PS3.8 Annex E.2: a message is a command set then (optionally) a data set, each sent as one or
more PDVs whose message control header says command/data set and last/not-last. Any layout is
legal on receipt (many PDVs per P-DATA-TF, one message over many P-DATA-TFs), so reassembly is
driven by PDVs alone and never by PDU boundaries.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from typing import Final

from netdicom.core.dimse.codec import UnknownCommand, decode_command
from netdicom.core.dimse.messages import DimseMessage, UnsupportedCommand
from netdicom.core.errors import AbortReason, LocalProtocolError, RemoteProtocolError
from netdicom.core.pdu.types import PresentationDataValue
from netdicom.core.records import frozen

__all__ = [
    "MAX_COMMAND_LENGTH",
    "MIN_PEER_MAX_PDU",
    "PDV_OVERHEAD",
    "UNLIMITED_FRAGMENT",
    "AssemblyEvent",
    "CommandReceived",
    "DatasetFragment",
    "MessageAssembler",
    "fragment",
    "max_fragment_length",
]

# A P-DATA-TF's length field counts, per PDV, the 4-byte item length, the context ID byte and
# the message control header byte (PS3.8 §9.3.5, Table 9-23 and Annex E.2).
PDV_OVERHEAD: Final = 6

# Peer max PDU 0 means "no limit" (PS3.8 Annex D.1). We still cut at 1 MiB: large enough that
# per-PDU overhead is negligible, small enough to bound the copy made when a PDU is encoded.
UNLIMITED_FRAGMENT: Final = 1 << 20

# A peer max below 8 leaves no room for an even (non-empty) fragment: sending at all would
# break the peer's own limit, so negotiation refuses it (acse.validation.peer_max_pdu_problem);
# real peers advertise 4096 or more (dcmtk's minimum).
MIN_PEER_MAX_PDU: Final = PDV_OVERHEAD + 2

# Command sets are a few hundred bytes; a peer sending more is broken or hostile, and command
# fragments must be buffered, so they are capped.
MAX_COMMAND_LENGTH: Final = 64 * 1024

_MAX_UINT32: Final = 0xFFFFFFFF


def max_fragment_length(peer_max_pdu: int) -> int:
    """Largest PDV fragment to send in one P-DATA-TF to a peer advertising `peer_max_pdu`.

    The result is peer max − 6 rounded down to even (dcmtk aborts on odd fragments mid-message);
    0 (unlimited) gives UNLIMITED_FRAGMENT; values below 8 (refused by negotiation) as 8.
    """
    if not 0 <= peer_max_pdu <= _MAX_UINT32:
        raise LocalProtocolError(f"max PDU length {peer_max_pdu} is not a 32-bit unsigned value")
    if peer_max_pdu == 0:
        return UNLIMITED_FRAGMENT
    usable = max(peer_max_pdu, MIN_PEER_MAX_PDU) - PDV_OVERHEAD
    return usable & ~1


def fragment(data: bytes | bytearray | memoryview, max_fragment: int) -> Iterator[memoryview]:
    """Yield zero-copy slices of `data`, none longer than `max_fragment`.

    An odd `max_fragment` above 1 is rounded down to even, so every slice but a final remainder
    is even. Empty data yields one empty slice (a message part is always at least one PDV).
    """
    if max_fragment < 1:
        raise LocalProtocolError(f"fragment length must be positive, not {max_fragment}")
    step = max_fragment if max_fragment == 1 else max_fragment & ~1
    view = memoryview(data)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")  # slice by bytes whatever the buffer's item type
    total = len(view)
    if total == 0:
        yield view
        return
    for start in range(0, total, step):
        yield view[start : start + step]


@frozen
class CommandReceived:
    """A whole command set arrived and was decoded (an UnsupportedCommand if we lack it)."""

    context_id: int
    message: DimseMessage | UnsupportedCommand


@frozen
class DatasetFragment:
    """One data-set PDV of the message whose command came last; `is_last` ends the message."""

    context_id: int
    data: memoryview | bytes
    is_last: bool


AssemblyEvent = CommandReceived | DatasetFragment


def _error(message: str, field: str) -> RemoteProtocolError:
    return RemoteProtocolError(
        message, field=field, abort_reason=AbortReason.INVALID_PDU_PARAMETER_VALUE
    )


class MessageAssembler:
    """Reassembles DIMSE messages from received PDVs, one message at a time per association.

    Command fragments are buffered (up to MAX_COMMAND_LENGTH) and decoded on the last one;
    data-set fragments are passed through as they come, never buffered. Protocol violations
    raise RemoteProtocolError with abort reason 6 (invalid PDU parameter value).
    """

    __slots__ = (
        "_accepted",
        "_command_chunks",
        "_command_context",
        "_command_length",
        "_dataset_context",
    )

    def __init__(self, accepted_context_ids: Collection[int]) -> None:
        self._accepted = frozenset(accepted_context_ids)
        self._command_chunks: list[bytes] = []
        self._command_length = 0
        self._command_context: int | None = None  # set while a command is incomplete
        self._dataset_context: int | None = None  # set while a data set is expected

    @property
    def expecting_dataset(self) -> bool:
        """True between a command announcing a data set and that data set's last fragment."""
        return self._dataset_context is not None

    @property
    def command_in_progress(self) -> bool:
        """True while some but not all fragments of a command set have arrived."""
        return self._command_context is not None

    @property
    def idle(self) -> bool:
        """True at a message boundary (nothing partial buffered or expected)."""
        return self._command_context is None and self._dataset_context is None

    def feed(self, pdv: PresentationDataValue) -> list[AssemblyEvent]:
        """Take one received PDV; return what it completed or carried."""
        context_id = pdv.context_id
        if context_id not in self._accepted:
            raise _error(
                f"PDV on presentation context {context_id}, which was not accepted",
                "presentation context ID",
            )
        if pdv.is_command:
            return self._feed_command(context_id, pdv)
        return self._feed_dataset(context_id, pdv)

    def feed_all(self, pdvs: Iterable[PresentationDataValue]) -> list[AssemblyEvent]:
        """Feed several PDVs (e.g. those of one P-DATA-TF) in order."""
        events: list[AssemblyEvent] = []
        for pdv in pdvs:
            events.extend(self.feed(pdv))
        return events

    def _feed_command(self, context_id: int, pdv: PresentationDataValue) -> list[AssemblyEvent]:
        if self._dataset_context is not None:
            raise _error(
                "command fragment received while the previous message's data set is incomplete",
                "message control header",
            )
        if self._command_context is None:
            self._command_context = context_id
        elif context_id != self._command_context:
            raise _error(
                f"command fragment on context {context_id} continues a command begun on "
                f"context {self._command_context}",
                "presentation context ID",
            )
        self._command_length += len(pdv.data)
        if self._command_length > MAX_COMMAND_LENGTH:
            raise _error(
                f"command set longer than {MAX_COMMAND_LENGTH} bytes", "command set length"
            )
        if not pdv.is_last:
            # Copy: the PDV's memory may belong to a receive buffer that is reused. An empty
            # fragment adds nothing (and must not grow the list: a peer can send millions).
            if pdv.data:
                self._command_chunks.append(bytes(pdv.data))
            return []

        if self._command_chunks:
            self._command_chunks.append(bytes(pdv.data))
            command: bytes | memoryview = b"".join(self._command_chunks)
        else:
            command = pdv.data  # the usual case: a command set in one PDV, decoded in place
        self._command_chunks = []
        self._command_length = 0
        self._command_context = None

        message: DimseMessage | UnsupportedCommand
        try:
            message = decode_command(command)
        except UnknownCommand as exc:
            message = exc.command
        if message.has_dataset:
            self._dataset_context = context_id
        return [CommandReceived(context_id, message)]

    def _feed_dataset(self, context_id: int, pdv: PresentationDataValue) -> list[AssemblyEvent]:
        if self._dataset_context is None:
            if self._command_context is not None:
                reason = "data set fragment before the command set's last fragment"
            else:
                reason = "data set fragment without a command announcing a data set"
            raise _error(reason, "message control header")
        if context_id != self._dataset_context:
            raise _error(
                f"data set fragment on context {context_id} for a command received on "
                f"context {self._dataset_context}",
                "presentation context ID",
            )
        if pdv.is_last:
            self._dataset_context = None
        return [DatasetFragment(context_id, pdv.data, pdv.is_last)]
