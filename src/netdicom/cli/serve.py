"""`netdicom serve --dir DIR`: a DICOM server on a folder."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from netdicom.cli.common import DebugOption, MaxPduOption, QuietOption, run

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
DEFAULT_LAYOUT = "{PatientID}/{StudyInstanceUID}/{SeriesInstanceUID}/{SOPInstanceUID}.dcm"


class OnDuplicate(StrEnum):
    keep = "keep"
    overwrite = "overwrite"
    rename = "rename"


def _transfer_syntax(value: str) -> str:
    """A transfer syntax given as a UID or a pydicom keyword (ExplicitVRLittleEndian)."""
    import pydicom.uid

    from netdicom.core.sop_classes import known_transfer_syntaxes

    uid = value.strip()
    if not uid[:1].isdigit():
        found = getattr(pydicom.uid, uid, None)
        if not isinstance(found, str):
            raise typer.BadParameter(f"{value!r} is not a transfer syntax UID or keyword")
        uid = str(found)
    if uid not in known_transfer_syntaxes():
        raise typer.BadParameter(f"{value!r} is not a public transfer syntax")
    return uid


def serve(
    directory: Annotated[
        Path,
        typer.Option("--dir", help="Folder to serve (created if missing).", file_okay=False),
    ],
    host: Annotated[
        str,
        typer.Option("--host", help="Address to listen on; 0.0.0.0 listens on every interface."),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.", min=0, max=65535)] = 11112,
    aet: Annotated[str, typer.Option("--aet", help="Our AE title.")] = "NETDICOM",
    max_associations: Annotated[
        int | None,
        typer.Option(
            "--max-associations",
            help="Refuse (A-ASSOCIATE-RJ transient, local limit) beyond N at once.",
            min=1,
        ),
    ] = None,
    idle_timeout: Annotated[
        float,
        typer.Option(
            "--idle-timeout", help="Abort an association silent this many seconds.", min=0.1
        ),
    ] = 60.0,
    acse_timeout: Annotated[
        float,
        typer.Option(
            "--acse-timeout",
            help="Seconds a connection may take to send its A-ASSOCIATE-RQ (ARTIM), and to close.",
            min=0.1,
        ),
    ] = 30.0,
    max_pdu: MaxPduOption = 262144,
    layout: Annotated[
        str,
        typer.Option(
            "--layout",
            help="Where each instance goes under DIR: {Keyword} fields of the data set.",
            rich_help_panel=STORAGE_PANEL,
        ),
    ] = DEFAULT_LAYOUT,
    on_duplicate: Annotated[
        OnDuplicate,
        typer.Option(
            "--on-duplicate",
            help="An instance whose file exists: keep the first, overwrite it, or store "
            "beside it as NAME_1.dcm. All answer success.",
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
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """Serve a folder: answer C-ECHO and store every instance sent with C-STORE."""
    import logging
    import sys

    from netdicom.archive.layout import Layout, LayoutError
    from netdicom.archive.writer import DuplicatePolicy
    from netdicom.services.serve import ServeConfig
    from netdicom.transport.config import Timeouts, TransportConfig

    level = logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    root = logging.getLogger("netdicom")
    root.addHandler(handler)
    root.setLevel(level)
    try:
        Layout.parse(layout)
    except LayoutError as exc:
        raise typer.BadParameter(str(exc), param_hint="--layout") from None
    preferred = tuple(_transfer_syntax(value) for value in prefer_ts or ())
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        from netdicom.cli.common import fail

        raise fail(exc, debug=debug) from None
    remotes = _remotes(remote or [])
    config = ServeConfig(
        directory=directory,
        ae_title=aet,
        host=host,
        port=port,
        max_associations=max_associations,
        layout=layout,
        on_duplicate=DuplicatePolicy(on_duplicate.value),
        accept_unknown_sop_classes=not no_unknown,
        prefer_transfer_syntaxes=preferred,
        fsync=not no_fsync,
        remotes=remotes,
        transport=TransportConfig(
            timeouts=Timeouts(idle=idle_timeout, artim=acse_timeout, acse=acse_timeout),
            max_pdu=max_pdu,
        ),
    )
    run(_serve(config), debug=debug, quiet=quiet)


def _remotes(values: list[str]) -> dict[str, Peer]:
    """C-MOVE destinations: the config file's peers that have an AE title, then `--remote
    AE=HOST:PORT` (which wins)."""
    from netdicom.config import ConfigError, load_config
    from netdicom.services.peer import BadPeer, Peer, parse_peer

    remotes: dict[str, Peer] = {}
    try:
        config = load_config()
    except ConfigError as exc:
        raise typer.BadParameter(str(exc), param_hint="--remote") from None
    for named in config.peers.values():
        if named.aet:
            remotes[named.aet] = Peer(named.host, named.port, named.aet)
    for value in values:
        ae, sep, address = value.partition("=")
        ae = ae.strip()
        if not sep or not 0 < len(ae) <= 16:
            raise typer.BadParameter(f"{value!r} is not AE=HOST:PORT", param_hint="--remote")
        try:
            peer = parse_peer(address)
        except BadPeer as exc:
            raise typer.BadParameter(str(exc), param_hint="--remote") from None
        remotes[ae] = Peer(peer.host, peer.port, ae)
    return remotes


async def _serve(config: object) -> None:
    import asyncio
    import logging
    import signal

    from netdicom.services.serve import ServeApp, ServeConfig

    assert isinstance(config, ServeConfig)
    log = logging.getLogger("netdicom.serve")
    from netdicom.render.find_output import IndexProgress

    with IndexProgress() as progress:
        app = ServeApp(config, index_progress=progress)
    await app.server.start()
    where = f"{config.host}:{app.server.port}"
    log.info("listening on %s as AE %s, serving %s", where, config.ae_title, config.directory)
    if config.host in ("127.0.0.1", "localhost", "::1"):
        log.info("only this machine can connect; use --host 0.0.0.0 to listen on all interfaces")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    serving = asyncio.create_task(app.server.serve_forever())
    await stop.wait()
    log.info("stopping: no new associations; finishing the ones in progress")
    await app.server.close(grace=10.0)
    serving.cancel()
    log.info("stopped")
