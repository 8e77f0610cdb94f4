"""The exception hierarchy shared by every layer (see DESIGN.md §2)."""

from __future__ import annotations

from enum import IntEnum


class AbortReason(IntEnum):
    """A-ABORT reason/diag. when the source is the service provider (PS3.8 Table 9-26)."""

    NOT_SPECIFIED = 0
    UNRECOGNIZED_PDU = 1
    UNEXPECTED_PDU = 2
    UNRECOGNIZED_PDU_PARAMETER = 4
    UNEXPECTED_PDU_PARAMETER = 5
    INVALID_PDU_PARAMETER_VALUE = 6


class NetDicomError(Exception):
    """Root of every error netdicom raises on purpose."""


class LocalProtocolError(NetDicomError):
    """We were asked to do something the protocol does not allow (a bug or misuse here)."""


class RemoteProtocolError(NetDicomError):
    """The peer broke the protocol; `field` names what was wrong, `abort_reason` what to send."""

    def __init__(
        self,
        message: str,
        *,
        field: str = "",
        abort_reason: AbortReason = AbortReason.INVALID_PDU_PARAMETER_VALUE,
    ) -> None:
        super().__init__(message)
        self.field = field
        self.abort_reason = abort_reason


class AssociationRejected(NetDicomError):
    """The peer answered A-ASSOCIATE-RJ (PS3.8 §9.3.4)."""

    def __init__(self, result: int, source: int, reason: int, message: str = "") -> None:
        from netdicom.core.rejections import describe_rejection

        super().__init__(message or describe_rejection(result, source, reason))
        self.result = result
        self.source = source
        self.reason = reason


class NoAcceptedContext(NetDicomError):
    """The association was accepted but no proposed presentation context was."""


class AssociationAborted(NetDicomError):
    """The association ended in A-ABORT or A-P-ABORT (ours or the peer's)."""

    def __init__(
        self, message: str, *, source: int | None = None, reason: int | None = None
    ) -> None:
        super().__init__(message)
        self.source = source
        self.reason = reason


class ConnectionClosed(NetDicomError):
    """The peer closed the TCP connection without a release or an abort."""


class TimeoutExpired(NetDicomError):
    """A timer (connect, ACSE, DIMSE, idle) ran out; the message says which."""


class CancelIgnored(TimeoutExpired):
    """The peer did not end an operation within the grace we give it after our C-CANCEL-RQ
    (a fixed few seconds: --timeout has nothing to do with it)."""


class DimseFailure(NetDicomError):
    """A DIMSE operation ended with a failure status."""

    def __init__(self, status: int, message: str = "", hint: str | None = None) -> None:
        super().__init__(message or f"failure status 0x{status:04X}")
        self.status = status
        self.hint = hint  # what to try, said after the error


class ConnectFailed(NetDicomError):
    """The TCP (or TLS) connection could not be opened: refused, unreachable, handshake failed."""


class ListenFailed(NetDicomError):
    """We could not listen on the address asked for: the port is taken, privileged, or the
    address is not this machine's."""
