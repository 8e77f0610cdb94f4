"""One exit-code table for every subcommand, and the one place exceptions map to it."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0  # success
    FAILED = 1  # the operation failed: a failure status, or part of the work failed
    USAGE = 2  # usage error (bad option or argument)
    BAD_INPUT = 3  # bad or missing input (files, directories, config)
    CONNECT = 4  # connection failed: refused, unreachable, TLS handshake
    REJECTED = 5  # association rejected, or accepted with no usable presentation context
    ABORTED = 6  # association aborted, or the peer broke the protocol
    TIMEOUT = 7  # a timeout expired (connect, ACSE, DIMSE)
    INTERRUPTED = 130  # Ctrl-C / SIGINT
    # Standard output's reader went away (`netdicom find ... | head`): the command stops. 141
    # is what a shell reports for `cat` or `grep` in the same place (killed by SIGPIPE), so a
    # script under `set -o pipefail` sees the same as with those; we exit normally instead
    # of by the signal so that the association is aborted and no partial file is left.
    OUTPUT_CLOSED = 141


EXIT_CODE_HELP = (
    "Exit codes: 0 success; 1 operation failed; 2 usage error; 3 bad or missing input; "
    "4 connection failed; 5 association rejected or no usable context; 6 aborted or protocol "
    "error; 7 timeout; 130 interrupted (Ctrl-C; a client takes SIGTERM and SIGHUP as one); "
    "141 standard output closed (as by `| head`)."
)


def classify(exc: BaseException) -> tuple[ExitCode, str, str | None]:
    """Exit code, message and hint for an exception that ends a command."""
    from netdicom.core import errors
    from netdicom.core.rejections import describe_abort, rejection_hint
    from netdicom.services.peer import BadPeer

    if isinstance(exc, KeyboardInterrupt):
        return ExitCode.INTERRUPTED, "interrupted", None
    if isinstance(exc, BrokenPipeError) and stdout_closed():
        return ExitCode.OUTPUT_CLOSED, "standard output was closed: stopped", None
    if isinstance(exc, BadPeer):
        return ExitCode.USAGE, str(exc), None
    from netdicom.config import ConfigError

    if isinstance(exc, ConfigError):
        return ExitCode.BAD_INPUT, str(exc), None
    if isinstance(exc, errors.ListenFailed):
        return ExitCode.BAD_INPUT, str(exc), None
    if isinstance(exc, errors.ConnectFailed):
        return ExitCode.CONNECT, str(exc), None
    if isinstance(exc, errors.AssociationRejected):
        return ExitCode.REJECTED, str(exc), rejection_hint(exc.source, exc.reason)
    if isinstance(exc, errors.NoAcceptedContext):
        return ExitCode.REJECTED, str(exc), None
    if isinstance(exc, errors.CancelIgnored):
        return ExitCode.TIMEOUT, str(exc), None  # --timeout would not change it
    if isinstance(exc, errors.TimeoutExpired):
        return ExitCode.TIMEOUT, str(exc), "raise the limit with --timeout if the peer is slow"
    if isinstance(exc, errors.AssociationAborted):
        message = str(exc)
        # Only the peer's own A-ABORT carries a reason: say what its PDU says.
        if exc.source is not None and exc.reason is not None:
            message = f"{message}: {describe_abort(exc.source, exc.reason)}"
        return ExitCode.ABORTED, message, None
    if isinstance(exc, errors.ConnectionClosed | errors.RemoteProtocolError):
        return ExitCode.ABORTED, str(exc), None
    if isinstance(exc, errors.DimseFailure):
        return ExitCode.FAILED, str(exc), exc.hint
    if isinstance(exc, errors.LocalProtocolError):
        return ExitCode.USAGE, str(exc), None
    if isinstance(exc, OSError):
        return ExitCode.BAD_INPUT, str(exc), None
    return ExitCode.FAILED, f"internal error: {exc!r}", "run again with --debug for details"


def stdout_closed() -> bool:
    """True when nobody reads our standard output any more (a pipe whose reader exited).

    A BrokenPipeError alone does not say whose pipe broke; poll does: the write end of a pipe
    without readers reports POLLERR (a socket that was shut down, POLLHUP)."""
    import select
    import sys

    if getattr(sys.stdout, "closed_at_start", False):  # launch.ClosedStdout: `>&-`
        return True
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, ValueError, OSError):
        return False
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))
