"""What every subcommand shares: option types, peer resolution, running a coroutine."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Coroutine
from contextvars import ContextVar
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from netdicom.core.printable import quoted
from netdicom.core.records import frozen

if TYPE_CHECKING:
    from netdicom.services.peer import Peer
    from netdicom.services.session import ClientOptions

T = TypeVar("T")

# Whether --aet was given on the command line or came from $NETDICOM_AET (Typer hands both
# over as the option's value): said when a peer rejects the title. Set as _AEC_GIVEN is.
_AET_FROM_ENV: ContextVar[bool] = ContextVar("netdicom_aet_from_env", default=False)


def _note_aet(ctx: typer.Context, param: typer.CallbackParam, value: str | None) -> str | None:
    source = ctx.get_parameter_source(param.name or "aet")
    token = _AET_FROM_ENV.set(source is not None and source.name == "ENVIRONMENT")
    ctx.call_on_close(lambda: _AET_FROM_ENV.reset(token))
    return value


AetOption = Annotated[
    str | None,
    typer.Option(
        "--aet",
        callback=_note_aet,
        help="Our (calling) AE title. [default: the configured calling_aet (the peer's, else "
        "the file's), else NETDICOM]",
        envvar="NETDICOM_AET",
        show_envvar=True,
    ),
]
# Whether the running command's --aec was set by the user, not left at its default: a
# configured peer's aet yields to it (resolve_peer). Set by the option's callback, which runs
# on every parse (given or not) before the command's body calls resolve_peer; a context
# variable, as Typer hands the parse context to callbacks only.
_AEC_GIVEN: ContextVar[bool] = ContextVar("netdicom_aec_given", default=False)


def _note_aec(ctx: typer.Context, param: typer.CallbackParam, value: str) -> str:
    source = ctx.get_parameter_source(param.name or "aec")
    # Compared by name: the enum lives in click or, from Typer 0.2x, in Typer's copy of it.
    token = _AEC_GIVEN.set(source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP"))
    # Back to what it was once the command is done: nothing leaks into a later command run in
    # the same process (tests) or into resolve_peer called outside a command.
    ctx.call_on_close(lambda: _AEC_GIVEN.reset(token))
    return value


AecOption = Annotated[
    str,
    typer.Option(
        "--aec",
        callback=_note_aec,
        help="The peer's (called) AE title. AET@ in PEER overrides it; it overrides the aet of "
        "a peer named in the configuration file.",
    ),
]


def finite_seconds(value: float) -> float:
    """Seconds must be a number: `nan` passed every range check (it compares false), and a
    client then timed out at once, serve aborted every association (walkthrough 7a)."""
    import math

    if not math.isfinite(value):
        raise typer.BadParameter(
            f"{value} is not a number of seconds: give a finite one (86400 for a day)"
        )
    return value


TimeoutOption = Annotated[
    float,
    typer.Option(
        "--timeout",
        callback=finite_seconds,
        help="Seconds to wait for the connection, the association and each DIMSE reply.",
        min=0.1,
    ),
]
MaxPduOption = Annotated[
    int,
    typer.Option(
        "--max-pdu",
        help="Largest P-DATA-TF we accept, in bytes: 8 or more, or 0 for the most we take (4 MiB).",
        min=0,
    ),
]
VerboseOption = Annotated[
    bool, typer.Option("-v", "--verbose", help="Show the negotiation (proposed vs accepted).")
]


class OnDuplicate(StrEnum):
    """What --on-duplicate names (serve, get, move --listen): see archive.writer."""

    keep = "keep"
    overwrite = "overwrite"
    rename = "rename"


RetrievedDuplicateOption = Annotated[
    OnDuplicate,
    typer.Option(
        "--on-duplicate",
        help="An instance already in DIR (same SOP Instance UID at its path, as on a second "
        "run): keep the file there, overwrite it with the one received, or store it too "
        "(NAME_1.dcm beside it).",
    ),
]
QuietOption = Annotated[
    bool,
    typer.Option(
        "-q",
        "--quiet",
        help="Print nothing but what --json (or find's --csv) asks for; the exit code says.",
    ),
]
# serve has no result to print: -q keeps its log to warnings and errors.
ServeQuietOption = Annotated[
    bool, typer.Option("-q", "--quiet", help="Log warnings and errors only.")
]
NoProgressOption = Annotated[
    bool,
    typer.Option(
        "--no-progress",
        help="No progress bar (also off when stderr is not a terminal or NO_COLOR is set).",
    ),
]
DebugOption = Annotated[bool, typer.Option("--debug", help="Protocol trace and tracebacks.")]

# --- TLS and user identity (issue 8), shared by every client subcommand and serve ------------
SECURITY_PANEL = "Security"
TlsOption = Annotated[
    bool,
    typer.Option(
        "--tls",
        help="Use TLS 1.2+ (BCP 195, PS3.15 B.9); implied by any --tls-* option. The port "
        "registered for DICOM over TLS is 2762.",
        rich_help_panel=SECURITY_PANEL,
    ),
]
TlsCertOption = Annotated[
    Path | None,
    typer.Option(
        "--tls-cert",
        help="Our certificate (PEM; may hold the key too).",
        dir_okay=False,
        rich_help_panel=SECURITY_PANEL,
    ),
]
TlsKeyOption = Annotated[
    Path | None,
    typer.Option(
        "--tls-key",
        help="Our private key (PEM, unencrypted).",
        dir_okay=False,
        rich_help_panel=SECURITY_PANEL,
    ),
]
TlsCaOption = Annotated[
    Path | None,
    typer.Option(
        "--tls-ca",
        help="CA certificates (PEM file) to verify the peer with; clients default to the "
        "system's trust store.",
        rich_help_panel=SECURITY_PANEL,
    ),
]
TlsNoHostnameCheckOption = Annotated[
    bool,
    typer.Option(
        "--tls-no-hostname-check",
        help="Accept a server certificate that does not name the host dialled (it is still "
        "verified against the CA).",
        rich_help_panel=SECURITY_PANEL,
    ),
]
UsernameOption = Annotated[
    str | None,
    typer.Option(
        "--username",
        help="Send this user identity (PS3.7 D.3.3.7).",
        rich_help_panel=SECURITY_PANEL,
    ),
]
PasswordOption = Annotated[
    str | None,
    typer.Option(
        "--password",
        help="Passcode sent with --username; prefer $NETDICOM_PASSWORD (command lines are "
        "visible to other users).",
        envvar="NETDICOM_PASSWORD",
        show_envvar=True,
        rich_help_panel=SECURITY_PANEL,
    ),
]


@frozen
class ClientSecurity:
    """TLS and user identity for a client subcommand, as given on the command line."""

    tls: bool = False
    cert: Path | None = None
    key: Path | None = None
    ca: Path | None = None
    no_hostname_check: bool = False
    username: str | None = None
    password: str | None = None


def client_options(
    aet: str | None,
    aec: str,
    timeout: float,
    max_pdu: int,
    security: ClientSecurity,
    *,
    peer_text: str | None = None,
    quiet: bool = False,
    debug: bool = False,
) -> ClientOptions:
    """The ClientOptions of a client subcommand: timeouts, TLS context and user identity.

    A peer named in the configuration file with `tls = true` turns TLS on. Bad TLS files exit
    3 (bad input) with the reason; a password without TLS gets a warning on stderr.
    """
    import logging

    from netdicom.services.session import ClientOptions
    from netdicom.transport.config import Timeouts, TransportConfig

    use_tls = (
        security.tls
        or any(p is not None for p in (security.cert, security.key, security.ca))
        or security.no_hostname_check
        or _named_peer_wants_tls(peer_text)
    )
    context = None
    if use_tls:
        from netdicom.transport.tls import TlsOptions, TlsSetupError, client_context

        try:
            context = client_context(
                TlsOptions(
                    cert=security.cert,
                    key=security.key,
                    ca=security.ca,
                    check_hostname=not security.no_hostname_check,
                )
            )
        except TlsSetupError as exc:
            from netdicom.cli.exit_codes import ExitCode

            if not quiet:
                stderr(f"netdicom: error: {exc}")
            raise typer.Exit(int(ExitCode.BAD_INPUT)) from None
    identity = None
    if security.password is not None and security.username is None:
        raise typer.BadParameter("--password needs --username", param_hint="--password")
    if security.username is not None:
        from netdicom.core.pdu import UserIdentityRQ, UserIdentityType

        kind = (
            UserIdentityType.USERNAME
            if security.password is None
            else UserIdentityType.USERNAME_AND_PASSCODE
        )
        identity = UserIdentityRQ(
            kind,
            # Asked for, so that we learn whether the peer checked it (PS3.7 D.3.3.7).
            positive_response_requested=True,
            primary=security.username.encode("utf-8"),
            secondary=(security.password or "").encode("utf-8"),
        )
        session_log = logging.getLogger("netdicom.session")
        if not quiet:
            if security.password is not None and context is None:
                stderr(
                    "netdicom: warning: the password is sent in clear text: add --tls to "
                    "encrypt the connection"
                )
            from netdicom.render.log_text import CommandFormatter

            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(CommandFormatter(debug=False))
            session_log.addHandler(handler)
        else:
            session_log.setLevel(logging.ERROR)
    calling, origin = calling_ae_and_origin(aet, peer_text)
    return ClientOptions(
        calling_ae=calling,
        calling_ae_origin=origin,
        called_ae=aec,
        transport=TransportConfig(
            timeouts=Timeouts(connect=timeout, acse=timeout, dimse=timeout),
            max_pdu=announced_max_pdu(max_pdu),
            ssl_context=context,
            trace=_debug_trace() if debug else None,
        ),
        user_identity=identity,
    )


def announced_max_pdu(value: int) -> int:
    """--max-pdu as announced: 0 meant "no limit" to the peer, which then sent a P-DATA-TF of
    6 MB that we refused as invalid (whole PDUs are held in memory, so there is a cap). We
    announce the cap instead: the most we take, honestly."""
    from netdicom.core.pdu.framer import INTERNAL_PDATA_CAP

    return value or INTERNAL_PDATA_CAP


def _debug_trace() -> Callable[[str, object], None]:
    from netdicom.render.trace import pdu_trace

    return pdu_trace


def _named_peer_wants_tls(text: str | None) -> bool:
    if text is not None and (":" in text or "@" in text):
        return False
    from netdicom.config import ConfigError, load_config

    try:
        config = load_config()
    except ConfigError:
        return False  # resolve_peer reports it
    name = text if text is not None else config.default_peer()
    named = config.peers.get(name) if name is not None else None
    return named is not None and named.tls


async def release_or_warn(assoc: Any, *, quiet: bool) -> None:
    """Release `assoc` once all its work is done and answered. A peer that then aborts or
    ignores the release has cost us nothing: a warning on stderr, not the command's failure
    (the results are shown and the exit code is theirs)."""
    from netdicom.core.errors import NetDicomError

    try:
        await assoc.release()
    except NetDicomError as exc:
        if not quiet:
            from netdicom.cli.exit_codes import classify

            stderr(f"netdicom: warning: all done, then: {classify(exc)[1]}")


# Where stderr() lines go instead of standard error: serve --log-json makes each one a JSON
# log record, so that its fatal start-up errors are JSON lines too (walkthrough 7a).
_line_sink: Callable[[str], None] | None = None


def send_lines_to(sink: Callable[[str], None] | None) -> None:
    """Route stderr() lines to `sink` (None: standard error again)."""
    global _line_sink
    _line_sink = sink


def stderr(message: str) -> None:
    """Write one line on stderr. Our messages embed text a peer chose (its Error Comment, its
    AE title, UIDs): escaped here, the one place they all pass, so a newline in it cannot
    forge lines of ours and an escape sequence cannot reach the terminal."""
    from netdicom.core.printable import printable

    if _line_sink is not None:
        _line_sink(printable(message))
        return
    sys.stderr.write(printable(message) + "\n")


def fail(exc: BaseException, *, debug: bool, quiet: bool = False) -> typer.Exit:
    """Report `exc` on stderr and return the typer.Exit carrying its exit code."""
    from netdicom.cli.exit_codes import ExitCode, classify

    code, message, hint = classify(exc)
    if code is ExitCode.OUTPUT_CLOSED:
        _discard_stdout()
    if debug:
        import traceback

        from netdicom.core.printable import printable

        # The traceback ends with the exception's message, peer text included: its lines
        # are ours to keep, the escape sequences in them are not.
        for line in "".join(traceback.format_exception(exc)).rstrip("\n").split("\n"):
            sys.stderr.write(printable(line) + "\n")
    if not quiet:
        # stderr() escapes the peer's text in both (the message and the hint).
        stderr(f"netdicom: error: {message}")
        if hint:
            stderr(f"hint: {hint}")
    return typer.Exit(int(code))


def _discard_stdout() -> None:
    """Point standard output at /dev/null: what is still buffered for it (and the flush at
    exit) must not raise BrokenPipeError again once its reader is gone."""
    import os

    try:
        fd = sys.stdout.fileno()
    except (OSError, ValueError):
        return  # closed before we started (launch.ClosedStdout): nothing is buffered there
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


class _Interrupts:
    """Ctrl-C (SIGINT) while a command runs. One handler for the whole run, installed with
    signal.signal rather than the event loop's add_signal_handler: asyncio's own (Runner, or a
    loop's handler removed when it closes) puts Python's default back once the loop is done,
    and a Ctrl-C there (the summary being written, threads joined at exit) raised
    KeyboardInterrupt anywhere, tracebacks included, or hit the closed loop's wakeup fd.

    The first Ctrl-C goes to the command: its own handler (get and move send C-CANCEL, then
    A-ABORT on the next) or, by default, the cancellation of its task (which ends in exit 130
    once the command has said what it did). A third one raises KeyboardInterrupt at once: the
    way out of a command that does not stop. Once the work is done they are only counted."""

    __slots__ = ("count", "handler", "how", "loop", "task")

    def __init__(self) -> None:
        self.count = 0
        self.how = "Ctrl-C"  # or the name of the first signal that was not SIGINT
        self.handler: Callable[[], None] | None = None
        self.loop: Any = None
        self.task: Any = None

    def signalled(self, signum: int, frame: object) -> None:
        import signal

        if not self.count and signum != signal.SIGINT:
            self.how = signal.Signals(signum).name
        self.count += 1
        loop, task = self.loop, self.task
        if loop is None or task is None or task.done() or loop.is_closed():
            return  # before or after the work: nothing to stop
        if self.count >= 3:
            raise KeyboardInterrupt
        # Delivered by the loop, between its callbacks (and it wakes the loop's select).
        loop.call_soon_threadsafe(self._deliver)

    def _deliver(self) -> None:
        if self.task is None or self.task.done():
            return
        if self.handler is not None:
            self.handler()
        elif not self.task.cancelling():
            self.task.cancel()


_interrupts = _Interrupts()


def interrupted_text() -> str:
    """What --json's "error" says after Ctrl-C (exit 130), for every client command; SIGTERM
    or SIGHUP by name (a CI job's log blamed a Ctrl-C nobody pressed)."""
    return f"interrupted ({_interrupts.how})"


def on_interrupt(handler: Callable[[], None] | None) -> None:
    """Let `handler` (called on the event loop) answer each Ctrl-C of the running command
    instead of cancelling its task; None: back to cancelling it."""
    _interrupts.handler = handler


def install_interrupt(cancel: Any, abort: Any) -> None:
    """Ctrl-C sets `cancel` (C-CANCEL-RQ is sent); a second one calls `abort`."""

    def on_ctrl_c() -> None:
        if cancel.is_set():
            stderr("netdicom: interrupted again: aborting the association (A-ABORT)")
            abort()
        else:
            stderr(f"netdicom: {interrupted_text()}: sending C-CANCEL (again to abort)")
            cancel.set()

    on_interrupt(on_ctrl_c)


def interrupted() -> bool:
    """Whether Ctrl-C was pressed during the running command."""
    return _interrupts.count > 0


def run(
    coro: Coroutine[Any, Any, T], *, debug: bool, quiet: bool = False, terminate: bool = True
) -> T:
    """Run `coro` to completion, turning any failure into the documented exit code.

    `terminate`: SIGTERM and SIGHUP mean what Ctrl-C means (a client stopped by `timeout`,
    systemd or a cancelled CI job sent no C-CANCEL, printed no report and no JSON, and ended
    with 143: walkthrough 6d). serve handles them itself. A signal ignored when we started
    (nohup) stays ignored."""
    import asyncio
    import gc
    import logging
    import signal
    import threading

    if not gc.isenabled():
        # netdicom.launch switched the collector off for the imports: back on for the real
        # work, with what is loaded by now frozen (never scanned again by full collections).
        gc.freeze()
        gc.enable()

    from netdicom.render.log_text import CommandFormatter

    if debug:
        handler = logging.StreamHandler()
        handler.setFormatter(CommandFormatter(debug=True))
        logging.basicConfig(level=logging.DEBUG, handlers=[handler])
    elif logging.lastResort is not None:
        # Outside serve and --debug no handler is set up: our modules' warnings reach stderr
        # through logging's last resort, escaped and worded as our other lines.
        logging.lastResort.setFormatter(CommandFormatter(debug=False))

    global _interrupts
    state = _interrupts = _Interrupts()

    async def main() -> T:
        state.loop = asyncio.get_running_loop()
        state.task = asyncio.current_task()
        return await coro

    # Not the main thread (tests): Ctrl-C keeps its meaning there.
    owned = threading.current_thread() is threading.main_thread()
    previous: dict[int, Any] = {}
    if owned:
        wanted = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP) if terminate else (signal.SIGINT,)
        for number in wanted:
            if number == signal.SIGINT or signal.getsignal(number) is not signal.SIG_IGN:
                previous[number] = signal.signal(number, state.signalled)
    try:
        return asyncio.run(main())
    except KeyboardInterrupt as exc:
        raise fail(exc, debug=False, quiet=quiet) from None
    except asyncio.CancelledError:
        if not state.count:
            raise
        # Our task, cancelled by Ctrl-C, has said what it did: now the exit code.
        raise fail(KeyboardInterrupt(), debug=False, quiet=quiet) from None
    except typer.Exit:
        raise
    except Exception as exc:
        raise fail(exc, debug=debug, quiet=quiet) from None
    finally:
        state.loop = state.task = None
        # Interrupted, the command is on its way out with 130: a further Ctrl-C must not cut
        # its last lines short nor raise in the interpreter's shutdown. SIGTERM and SIGHUP get
        # their handlers back: an ignored one is inherited by every program started later
        # (in a test run, every peer then outlived its SIGTERM by the 10 s kill timeout).
        for signum, before in previous.items():
            if signum == signal.SIGINT:
                ignore = bool(state.count)
                signal.signal(
                    signum, signal.SIG_IGN if ignore else before or signal.default_int_handler
                )
            else:
                signal.signal(signum, before if before is not None else signal.SIG_DFL)


def names_a_configured_peer(text: str) -> bool:
    """`text` is the name of a peer in the configuration file (False when it cannot be read:
    resolving the peer says why)."""
    from netdicom.config import ConfigError, load_config

    try:
        return text in load_config().peers
    except ConfigError:
        return False


def has_default_peer() -> bool:
    """A default peer is configured ($NETDICOM_PEER, or `default` in the file)."""
    from netdicom.config import ConfigError, load_config

    if os.environ.get("NETDICOM_PEER"):
        return True
    try:
        return load_config().default is not None
    except ConfigError:
        return False


def check_folder(path: Path, option: str) -> None:
    """Make `path` (and its parents) when missing, and check that files can be created in it:
    before any network traffic. An output folder that could not be used was found after the
    peer had been queried, in words such as "[Errno 1] Operation not permitted" (and a path
    that is a file was a usage error, exit 2, one level up bad input, exit 3; walkthrough 7a).
    Raises OSError saying what to fix (exit 3)."""
    import tempfile

    missing = [p for p in (path, *path.parents) if not os.path.lexists(p)]
    try:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise OSError(f"{option} {path}: a file is in the way, not a folder") from None
        except OSError as exc:
            raise OSError(f"{option} {path}: cannot create it: {exc.strerror or exc}") from None
        if not path.is_dir():
            raise OSError(f"{option} {path}: a file is in the way, not a folder")
        try:
            fd, probe = tempfile.mkstemp(dir=path, prefix=".netdicom-probe-")
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise OSError(
                f"{option} {path}: cannot write in it: {exc.strerror or exc} (is it read-only, "
                "or not writable by this user?)"
            ) from None
    finally:
        # Made for the check only (those made on the way to a failure too): the run makes
        # it again when it has something to put there (a run that stored nothing left an
        # empty folder, a new dated one each day).
        for made in missing:
            with contextlib.suppress(OSError):
                os.rmdir(made)


def calling_ae_title(aet: str | None, peer_text: str | None) -> str:
    """Our AE title: --aet (or $NETDICOM_AET: Typer hands it over as --aet), else the
    calling_aet configured for the peer PEER names (or the default peer), else the file's
    top-level calling_aet, else NETDICOM. A PACS knows its callers by title, so one set once
    saves giving --aet to every command. A broken configuration file exits 3."""
    return calling_ae_and_origin(aet, peer_text)[0]


def calling_ae_and_origin(aet: str | None, peer_text: str | None) -> tuple[str, str]:
    """calling_ae_title, and where it came from, in words."""
    from netdicom.services.session import DEFAULT_CALLING_AE

    if aet is not None:
        return aet, "$NETDICOM_AET" if _AET_FROM_ENV.get() else "--aet"
    from netdicom.cli.exit_codes import ExitCode
    from netdicom.config import ConfigError, load_config

    try:
        config = load_config()
    except ConfigError as exc:
        stderr(f"netdicom: error: {exc}")
        raise typer.Exit(int(ExitCode.BAD_INPUT)) from None
    name = peer_text if peer_text is not None else os.environ.get("NETDICOM_PEER")
    if name is None or name == "":
        name = config.default
    named = None if name is None or ":" in name or "@" in name else config.peers.get(name)
    if named is not None and named.calling_aet is not None:
        return named.calling_aet, f"calling_aet of [peers.{named.name}] in {config.path}"
    if config.calling_aet is not None:
        return config.calling_aet, f"calling_aet in {config.path}"
    return DEFAULT_CALLING_AE, "netdicom's default"


def resolve_peer(text: str | None) -> Peer:
    """PEER as given on the command line: HOST:PORT, AET@HOST:PORT or a peer name from the
    configuration file; None means the default peer ($NETDICOM_PEER, else `default`).

    Raises BadPeer (a usage error) for what cannot be resolved, typer.Exit(3) for a broken
    configuration file."""
    from netdicom.services.peer import BadPeer, Peer, parse_peer

    if text is None:
        # $NETDICOM_PEER takes every form PEER takes (a CI job sets HOST:PORT, no file).
        from_env = os.environ.get("NETDICOM_PEER", "")
        if ":" in from_env or "@" in from_env:
            return parse_peer(from_env)
    if text is not None and (":" in text or "@" in text):
        # Peer names never hold ':' or '@': no need to read the configuration.
        return parse_peer(text)
    from netdicom.cli.exit_codes import ExitCode
    from netdicom.config import ConfigError, load_config

    try:
        config = load_config()
    except ConfigError as exc:
        stderr(f"netdicom: error: {exc}")
        raise typer.Exit(int(ExitCode.BAD_INPUT)) from None
    name = text if text is not None else config.default_peer()
    where = config.path or "the configuration file"
    if name is None:
        raise BadPeer(
            f"no PEER given and no default peer: give HOST:PORT, AET@HOST:PORT or a name, "
            f'or set default = "NAME" in {where} (or NETDICOM_PEER)'
        )
    named = config.peers.get(name)
    if named is None:
        known = ", ".join(sorted(config.peers)) or "none"
        if text is None and os.environ.get("NETDICOM_PEER"):
            # The name came from the environment, not the command line: say so, or the user
            # looks for it in the wrong place.
            raise BadPeer(
                f"$NETDICOM_PEER is {quoted(name)}, which names no peer in {where} (configured: "
                f"{known}): set it to one of those, unset it, or give PEER"
            )
        raise BadPeer(
            f"{quoted(name)} is not HOST:PORT, AET@HOST:PORT or a peer named in {where} "
            f"(configured: {known})"
        )
    # The called AE title, most explicit first: AET@ in PEER (handled above), --aec, the
    # configured aet, the default. Peer.ae_title beats --aec downstream, so a configured aet
    # is only put there when --aec was not given.
    called = None if _AEC_GIVEN.get() else named.aet
    return Peer(host=named.host, port=named.port, ae_title=called)
