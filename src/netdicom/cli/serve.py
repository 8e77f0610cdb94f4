"""`netdicom serve --dir DIR`: a DICOM server on a folder."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from netdicom.cli.common import (
    SECURITY_PANEL,
    DebugOption,
    MaxPduOption,
    OnDuplicate,
    ServeQuietOption,
    TlsCaOption,
    TlsCertOption,
    TlsKeyOption,
    TlsOption,
    announced_max_pdu,
    finite_seconds,
    run,
    stderr,
)
from netdicom.core.address import host_port
from netdicom.core.printable import quoted

EXAMPLES = """\
Examples:

  netdicom serve --dir ./archive

  netdicom serve --dir /srv/dicom --host 0.0.0.0 --port 104 --aet ARCHIVE

  netdicom serve --dir ./archive --layout '{StudyInstanceUID}/{SOPInstanceUID}.dcm'

  netdicom serve --dir ./archive --prefer-ts 1.2.840.10008.1.2.4.80 --on-duplicate rename
"""

if TYPE_CHECKING:
    from netdicom.services.peer import Peer

STORAGE_PANEL = "Storage"
RETRIEVE_PANEL = "Query/Retrieve"
# netdicom.archive.layout.DEFAULT_LAYOUT, spelt out so that loading the CLI (and so `netdicom
# echo`) does not import the archive package; a test keeps the two equal.
# Each association may hold a few MiB a peer chose (an identifier up to 4 MiB, receive
# buffers): without a default a crowd of peers could take hundreds of MB (60 took 400 MB).
# 32 is far above what one site's modalities open at once; --max-associations 0 lifts it.
DEFAULT_MAX_ASSOCIATIONS = 32
DEFAULT_LAYOUT = "{PatientID}/{StudyInstanceUID}/{SeriesInstanceUID}/{SOPInstanceUID}.dcm"


def transfer_syntax_param(value: str) -> str:
    """A transfer syntax given as a UID or a pydicom keyword (ExplicitVRLittleEndian)."""
    import pydicom.uid

    from netdicom.core.sop_classes import known_transfer_syntaxes

    uid = value.strip()
    if not uid[:1].isdigit():
        found = getattr(pydicom.uid, uid, None)
        if not isinstance(found, str):
            raise typer.BadParameter(f"{quoted(value)} is not a transfer syntax UID or keyword")
        uid = str(found)
    if uid not in known_transfer_syntaxes():
        raise typer.BadParameter(f"{quoted(value)} is not a public transfer syntax")
    return uid


def serve(
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir",
            help="Folder to serve (created if missing); required unless --add-user.",
            metavar="DIR",
            show_default=False,
        ),
    ] = None,
    host: Annotated[
        str,
        typer.Option("--host", help="Address to listen on; 0.0.0.0 listens on every interface."),
    ] = "127.0.0.1",
    port: Annotated[
        int,
        typer.Option(
            "--port", help="TCP port (0: any free one, named in the log).", min=0, max=65535
        ),
    ] = 11112,
    aet: Annotated[str, typer.Option("--aet", help="Our AE title.")] = "NETDICOM",
    max_associations: Annotated[
        int,
        typer.Option(
            "--max-associations",
            help=("Refuse (A-ASSOCIATE-RJ transient, local limit) beyond N at once; 0: no limit."),
            min=0,
        ),
    ] = DEFAULT_MAX_ASSOCIATIONS,
    idle_timeout: Annotated[
        float,
        typer.Option(
            "--idle-timeout",
            help="Abort an association silent this many seconds.",
            min=0.1,
            callback=finite_seconds,
        ),
    ] = 60.0,
    acse_timeout: Annotated[
        float,
        typer.Option(
            "--acse-timeout",
            callback=finite_seconds,
            help="Seconds a connection may take to send its A-ASSOCIATE-RQ (ARTIM), and to close.",
            min=0.1,
        ),
    ] = 30.0,
    dimse_timeout: Annotated[
        float,
        typer.Option(
            "--dimse-timeout",
            callback=finite_seconds,
            help="Abort a peer that sends less than 64 KiB of a message (or its end) in this "
            "many seconds; also how long a C-MOVE destination may take to answer.",
            min=0.1,
        ),
    ] = 60.0,
    max_pdu: MaxPduOption = 262144,
    layout: Annotated[
        str,
        typer.Option(
            "--layout",
            help="Where each instance goes under DIR: {Keyword} fields of the data set; it "
            "must hold {SOPInstanceUID}.",
            rich_help_panel=STORAGE_PANEL,
        ),
    ] = DEFAULT_LAYOUT,
    on_duplicate: Annotated[
        OnDuplicate,
        typer.Option(
            "--on-duplicate",
            help="An instance stored again (same SOP Instance UID): keep the first, "
            "overwrite it, or store it too (NAME_1.dcm beside it at the same path). All "
            "answer success.",
            rich_help_panel=STORAGE_PANEL,
        ),
    ] = OnDuplicate.keep,
    no_unknown: Annotated[
        bool,
        typer.Option(
            "--no-unknown",
            help="Refuse SOP classes we do not know (by default they are stored).",
            rich_help_panel=STORAGE_PANEL,
        ),
    ] = False,
    prefer_ts: Annotated[
        list[str] | None,
        typer.Option(
            "--prefer-ts",
            help="Accept this transfer syntax (UID or keyword) whenever offered; repeatable, "
            "first wins.",
            rich_help_panel=STORAGE_PANEL,
        ),
    ] = None,
    no_fsync: Annotated[
        bool,
        typer.Option(
            "--no-fsync",
            help="Answer success before the data reaches the disk (faster; a power cut "
            "may lose instances already acknowledged).",
            rich_help_panel=STORAGE_PANEL,
        ),
    ] = False,
    remote: Annotated[
        list[str] | None,
        typer.Option(
            "--remote",
            help="A C-MOVE destination, AE=HOST:PORT; repeatable. Peers of the config file "
            "with an aet are destinations too. An unknown destination gets status A801.",
            rich_help_panel=RETRIEVE_PANEL,
        ),
    ] = None,
    tls: TlsOption = False,
    tls_cert: TlsCertOption = None,
    tls_key: TlsKeyOption = None,
    tls_ca: TlsCaOption = None,
    tls_verify_peer: Annotated[
        bool,
        typer.Option(
            "--tls-verify-peer",
            help="Mutual TLS: require a client certificate signed by --tls-ca.",
            rich_help_panel=SECURITY_PANEL,
        ),
    ] = False,
    allow: Annotated[
        list[str] | None,
        typer.Option(
            "--allow",
            help="Accept only these callers: AE, AE@HOST or *@HOST; repeatable, added to "
            "[serve] allow of the config file. Others: A-ASSOCIATE-RJ (1, 1, 3).",
            rich_help_panel=SECURITY_PANEL,
        ),
    ] = None,
    strict_aet: Annotated[
        bool,
        typer.Option(
            "--strict-aet",
            help="Reject a called AE title other than --aet: A-ASSOCIATE-RJ (1, 1, 7).",
            rich_help_panel=SECURITY_PANEL,
        ),
    ] = False,
    users_file: Annotated[
        Path | None,
        typer.Option(
            "--users-file",
            help="Require a username and password (user identity, PS3.7 D.3.3.7) found in "
            "this file; failures: A-ASSOCIATE-RJ (1, 2, 1).",
            dir_okay=False,
            rich_help_panel=SECURITY_PANEL,
        ),
    ] = None,
    add_user: Annotated[
        str | None,
        typer.Option(
            "--add-user",
            help="Add NAME to --users-file (or change its password) and exit; the password "
            "is read from the terminal, or from the first line of stdin.",
            metavar="NAME",
            rich_help_panel=SECURITY_PANEL,
        ),
    ] = None,
    shutdown_grace: Annotated[
        float,
        typer.Option(
            "--shutdown-grace",
            callback=finite_seconds,
            help="On SIGTERM/SIGINT: seconds running associations get to finish before they "
            "are aborted (nothing half-stored is kept).",
            min=0,
        ),
    ] = 10.0,
    log_json: Annotated[
        bool,
        typer.Option(
            "--log-json",
            help="Log one JSON object per event (association, stored, query, retrieve) to stderr.",
        ),
    ] = False,
    quiet: ServeQuietOption = False,
    debug: DebugOption = False,
) -> None:
    """Serve a folder: storage and query/retrieve (C-ECHO, C-STORE, C-FIND, C-GET, C-MOVE)."""
    if add_user is not None:
        _add_user(add_user, users_file)
    if directory is None:
        raise typer.BadParameter("give the folder to serve", param_hint="--dir")
    import logging
    import sys

    from netdicom.archive.layout import Layout, LayoutError
    from netdicom.archive.writer import DuplicatePolicy
    from netdicom.services.serve import ServeConfig
    from netdicom.transport.config import Timeouts, TransportConfig

    level = logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO
    if not debug:
        # A busy store logs a line per instance: skip what every record would otherwise
        # collect and no format of ours shows (the caller's file and line, found by walking
        # the stack; thread and process), as the logging HOWTO's "Optimization" suggests.
        logging._srcfile = None
        logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    if log_json:
        from netdicom.cli.common import send_lines_to
        from netdicom.render.log_json import JsonFormatter

        handler.setFormatter(JsonFormatter())
        send_lines_to(_as_log_record)
    else:
        from netdicom.render.log_text import TextFormatter

        handler.setFormatter(TextFormatter(debug=debug))
    root = logging.getLogger("netdicom")
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False  # --debug also configures the root logger: no duplicate lines
    try:
        Layout.parse(layout)
    except LayoutError as exc:
        raise typer.BadParameter(str(exc), param_hint="--layout") from None
    from netdicom.core.acse.validation import clean_ae_title
    from netdicom.core.errors import LocalProtocolError

    try:
        # As the clients check theirs: serve started with a title it cannot send, then
        # aborted every association with an internal error.
        aet = clean_ae_title(aet, "our")
    except LocalProtocolError as exc:
        raise typer.BadParameter(str(exc), param_hint="--aet") from None
    from netdicom.core.acse.validation import check_max_pdu

    try:
        check_max_pdu(max_pdu)  # 1 to 6 left no room for a PDV: every association aborted
    except LocalProtocolError as exc:
        raise typer.BadParameter(str(exc), param_hint="--max-pdu") from None
    preferred = tuple(transfer_syntax_param(value) for value in prefer_ts or ())
    from netdicom.archive.lock import lock_folder
    from netdicom.cli.common import check_folder, fail
    from netdicom.core.errors import ListenFailed
    from netdicom.transport.server import check_listen

    try:
        # Before the folder and its index: building the index may take minutes, and a port
        # another server holds was found only then (a new --dir left behind, too).
        check_listen(host, port)
        check_folder(directory, "--dir")
        # One serve per folder, held until this process ends (archive.lock).
        lock_folder(directory)
    except (OSError, ListenFailed) as exc:
        raise fail(exc, debug=debug) from None
    remotes, tls_remotes = _remotes(remote or [])
    # --tls-ca alone, with move destinations to dial with TLS: the CA that verifies them, and
    # a plain listener. Without such destinations it can only mean TLS for the listener, which
    # then needs its certificate: asked for below rather than silently listening in plain.
    ca_for_remotes_only = bool(tls_ca and tls_remotes) and not (
        tls or tls_cert or tls_key or tls_verify_peer
    )
    ssl_context, outbound = (None, None)
    if not ca_for_remotes_only:
        ssl_context, outbound = _tls_contexts(tls, tls_cert, tls_key, tls_ca, tls_verify_peer)
    allowed = _allow_list([*_configured_allow(), *(allow or [])])
    if users_file is not None:
        _check_users_file(users_file)
    if tls_remotes and outbound is None:
        # A destination configured with tls = true, and serve itself without --tls: dial it
        # with a client context of the system's trust store (or --tls-ca).
        from netdicom.transport.tls import TlsOptions, TlsSetupError, client_context

        try:
            outbound = client_context(TlsOptions(ca=tls_ca))
        except TlsSetupError as exc:
            _bad_input(str(exc))
    config = ServeConfig(
        directory=directory,
        ae_title=aet,
        host=host,
        port=port,
        max_associations=max_associations or None,
        layout=layout,
        on_duplicate=DuplicatePolicy(on_duplicate.value),
        accept_unknown_sop_classes=not no_unknown,
        prefer_transfer_syntaxes=preferred,
        fsync=not no_fsync,
        remotes=remotes,
        tls_remotes=tls_remotes,
        transport=TransportConfig(
            timeouts=Timeouts(
                idle=idle_timeout, artim=acse_timeout, acse=acse_timeout, dimse=dimse_timeout
            ),
            max_pdu=announced_max_pdu(max_pdu),
            ssl_context=ssl_context,
            trace=_debug_trace() if debug else None,
        ),
        allow=allowed,
        strict_aet=strict_aet,
        users_file=users_file,
        shutdown_grace=shutdown_grace,
        outbound_ssl_context=outbound,
    )
    run(_serve(config), debug=debug, quiet=quiet, terminate=False)


def _debug_trace() -> Any:
    from netdicom.render.trace import pdu_trace

    return pdu_trace


def _remotes(values: list[str]) -> tuple[dict[str, Peer], frozenset[str]]:
    """C-MOVE destinations: the config file's peers that have an AE title, then `--remote
    AE=HOST:PORT` (which wins); and the AE titles to dial with TLS (config `tls = true`)."""
    from netdicom.config import ConfigError, load_config
    from netdicom.services.peer import BadPeer, Peer, parse_peer

    remotes: dict[str, Peer] = {}
    tls_remotes: set[str] = set()
    try:
        config = load_config()
    except ConfigError as exc:
        _bad_input(str(exc))  # the configuration file, not --remote: exit 3 naming it
    for name, named in config.peers.items():
        if named.aet:
            if named.aet in remotes:
                # Two peers with one AE title: a C-MOVE to it goes to one of them only.
                stderr(
                    f"netdicom: warning: configured peers share the AE title {named.aet}: a "
                    f"C-MOVE to it goes to [peers.{name}] only"
                )
            remotes[named.aet] = Peer(named.host, named.port, named.aet)
            if named.tls:
                tls_remotes.add(named.aet)
    for value in values:
        ae, sep, address = value.partition("=")
        ae = ae.strip()
        if not sep or not 0 < len(ae) <= 16:
            raise typer.BadParameter(f"{quoted(value)} is not AE=HOST:PORT", param_hint="--remote")
        try:
            peer = parse_peer(address)
        except BadPeer as exc:
            raise typer.BadParameter(str(exc), param_hint="--remote") from None
        remotes[ae] = Peer(peer.host, peer.port, ae)
        tls_remotes.discard(ae)
    return remotes, frozenset(tls_remotes)


class _StoppedWhileIndexing(BaseException):
    """A stop signal during the start-up index build (a BaseException, as KeyboardInterrupt:
    no `except Exception` on the way may take it for a failure of its own)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


async def _serve(config: object) -> None:
    import asyncio
    import logging
    import signal

    from netdicom.services.serve import ServeApp, ServeConfig

    assert isinstance(config, ServeConfig)
    log = logging.getLogger("netdicom.serve")
    from netdicom.render.find_output import IndexProgress

    # SIGTERM or SIGHUP while the index is built (minutes on a large archive): a stop that
    # says so; the default action ended serve with 143 and no line in the log. What was
    # indexed is committed batch by batch, so the next start goes on from there.
    def building_stopped(signum: int, frame: object) -> None:
        raise _StoppedWhileIndexing(signum)

    previous = {
        sig: signal.signal(sig, building_stopped) for sig in (signal.SIGTERM, signal.SIGHUP)
    }
    try:
        with IndexProgress() as progress:
            app = ServeApp(config, index_progress=progress)
    except _StoppedWhileIndexing as stopped:
        log.info(
            "stopped (%s) while the index was built: what was indexed is kept, the rest is "
            "indexed at the next start",
            signal.Signals(stopped.signum).name,
        )
        return
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    await app.server.start()
    where = host_port(config.host, app.server.port)
    from netdicom.services.events import emit

    # An event (--log-json: {"event": "listening", "port": ...}): a script that started serve
    # in the background, maybe with --port 0, learns from it that serve takes associations
    # and on which port, without reading the English message (walkthrough 7a).
    emit(
        "listening",
        f"listening on {where} as AE {config.ae_title}, serving {config.directory}",
        host=config.host,
        port=app.server.port,
        ae_title=config.ae_title,
        directory=str(config.directory),
    )
    if config.host in ("127.0.0.1", "localhost", "::1"):
        log.info("only this machine can connect; use --host 0.0.0.0 to listen on all interfaces")
    # Where a C-MOVE may send (it was never shown; walkthrough 6d).
    if config.remotes:
        shown = ", ".join(
            f"{ae} = {host_port(peer.host, peer.port)}"
            for ae, peer in sorted(config.remotes.items())
        )
        log.info("C-MOVE destinations: %s", shown)
    else:
        log.info("no C-MOVE destinations (configure peers with an aet, or --remote AE=HOST:PORT)")
    _log_exposure(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # SIGHUP too (the terminal serve ran in closed, or a service manager's reload): a stop
    # as graceful as SIGTERM's, where the default action killed serve mid transfer.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    serving = asyncio.create_task(app.server.serve_forever())
    await stop.wait()
    stop.clear()
    running = len(app.server.tasks) - sum(1 for a in app.server.associations if a.lingering)
    grace = config.shutdown_grace
    log.info(
        "stopping: no new associations; %s up to %g s to finish (signal again to abort %s now)",
        "1 association in flight gets" if running == 1 else f"{running} associations in flight get",
        grace,
        "it" if running == 1 else "them",
    )
    # A second signal cuts the grace short: whatever is unfinished is aborted, and the store
    # SCP removes its partial files as each association ends.
    closing = asyncio.create_task(app.server.close(grace=grace))
    again = asyncio.create_task(stop.wait())
    await asyncio.wait({closing, again}, return_when=asyncio.FIRST_COMPLETED)
    if not closing.done():
        log.info("aborting the running associations")
        closing.cancel()
        await app.server.close(grace=0)
    again.cancel()
    serving.cancel()
    app.flush_index()
    left = len(app.server.tasks)
    log.info("stopped%s", f" ({left} association tasks did not end)" if left else "")


def _log_exposure(config: object) -> None:
    """Say at start what serve exposes, so that an open server is never a surprise."""
    import logging

    from netdicom.services.serve import ServeConfig

    assert isinstance(config, ServeConfig)
    log = logging.getLogger("netdicom.serve")
    tls = config.transport.ssl_context
    parts = [
        "TLS" + (" with client certificates" if tls and tls.verify_mode == 2 else "")
        if tls is not None
        else "no TLS",
        f"callers allowed: {', '.join(config.allow)}" if config.allow else "any calling AE",
        "called AE must be ours" if config.strict_aet else "any called AE",
        f"users from {config.users_file}" if config.users_file else "no user identity check",
    ]
    log.info("access: %s", "; ".join(parts))
    if config.host not in ("127.0.0.1", "localhost", "::1") and not (
        tls is not None and (config.allow or config.users_file)
    ):
        log.warning(
            "listening on %s without TLS plus an allow list or users file: anyone who can reach "
            "this port can store and query (see --tls, --allow, --users-file)",
            config.host,
        )


def _tls_contexts(
    tls: bool, cert: Path | None, key: Path | None, ca: Path | None, verify_peer: bool
) -> tuple[Any, Any]:
    """(server context, client context for outgoing associations such as C-MOVE), or Nones."""
    if not (tls or cert or key or ca or verify_peer):
        return None, None
    from netdicom.transport.tls import TlsOptions, TlsSetupError, client_context, server_context

    options = TlsOptions(cert=cert, key=key, ca=ca, verify_peer=verify_peer)
    try:
        return server_context(options), client_context(options)
    except TlsSetupError as exc:
        _bad_input(str(exc))


def _as_log_record(line: str) -> None:
    """One of our stderr lines ("netdicom: error: ...", "hint: ...") as a log record, for
    --log-json: a script reading JSON lines got plain text for why serve did not start."""
    import logging

    logger = logging.getLogger("netdicom.serve")
    for prefix, level in (
        ("netdicom: error: ", logging.ERROR),
        ("netdicom: warning: ", logging.WARNING),
    ):
        if line.startswith(prefix):
            logger.log(level, "%s", line.removeprefix(prefix))
            return
    logger.info("%s", line.removeprefix("netdicom: "))


def _bad_input(message: str) -> NoReturn:
    from netdicom.cli.exit_codes import ExitCode

    stderr(f"netdicom: error: {message}")
    raise typer.Exit(int(ExitCode.BAD_INPUT))


def _configured_allow() -> tuple[str, ...]:
    """The config file's `[serve] allow`, checked here: an entry that does not parse or
    resolve is the file's fault (exit 3 naming it), not an --allow the user never gave."""
    from netdicom.config import ConfigError, load_config
    from netdicom.services.users import AllowList, AllowListError

    try:
        config = load_config()
    except ConfigError as exc:
        _bad_input(str(exc))
    try:
        AllowList.parse(list(config.allow))
    except AllowListError as exc:
        where = config.path or "the configuration file"
        _bad_input(f"{where}: [serve] allow: {str(exc).removeprefix('--allow ')}")
    return config.allow


def _allow_list(entries: list[str]) -> tuple[str, ...]:
    from netdicom.services.users import AllowList, AllowListError

    try:
        AllowList.parse(entries)
    except AllowListError as exc:
        raise typer.BadParameter(str(exc), param_hint="--allow") from None
    return tuple(entries)


def _check_users_file(path: Path) -> None:
    from netdicom.services.users import UsersFileError, load_users

    try:
        users = load_users(path)
    except UsersFileError as exc:
        _bad_input(str(exc))
    if not users.entries:
        _bad_input(f"{path} has no users: add one with --add-user NAME --users-file {path}")


def _add_user(name: str, users_file: Path | None) -> NoReturn:
    """`--add-user NAME --users-file F`: store NAME's salted scrypt hash, then exit."""
    import getpass
    import sys

    from netdicom.services.users import UsersFileError, add_user

    if users_file is None:
        raise typer.BadParameter("--add-user needs --users-file FILE", param_hint="--add-user")
    if sys.stdin.isatty():
        password = getpass.getpass(f"password for {name}: ")
        if getpass.getpass("again: ") != password:
            _bad_input("the passwords differ; nothing changed")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    try:
        new = add_user(users_file, name, password)
    except (UsersFileError, OSError) as exc:
        _bad_input(str(exc))
    sys.stderr.write(f"{'added' if new else 'changed the password of'} {name} in {users_file}\n")
    raise typer.Exit(0)
