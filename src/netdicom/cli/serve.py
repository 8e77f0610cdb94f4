"""`netdicom serve --dir DIR`: a DICOM server on a folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from netdicom.cli.common import DebugOption, MaxPduOption, QuietOption, run

EXAMPLES = """\
Examples:

  netdicom serve --dir ./archive

  netdicom serve --dir /srv/dicom --host 0.0.0.0 --port 104 --aet ARCHIVE
"""


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
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """Serve a folder: answer C-ECHO (storage and query/retrieve follow)."""
    import logging
    import sys

    from netdicom.services.serve import ServeConfig
    from netdicom.transport.config import Timeouts, TransportConfig

    level = logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    root = logging.getLogger("netdicom")
    root.addHandler(handler)
    root.setLevel(level)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        from netdicom.cli.common import fail

        raise fail(exc, debug=debug) from None
    config = ServeConfig(
        directory=directory,
        ae_title=aet,
        host=host,
        port=port,
        max_associations=max_associations,
        transport=TransportConfig(
            timeouts=Timeouts(idle=idle_timeout, artim=acse_timeout, acse=acse_timeout),
            max_pdu=max_pdu,
        ),
    )
    run(_serve(config), debug=debug, quiet=quiet)


async def _serve(config: object) -> None:
    import asyncio
    import logging
    import signal

    from netdicom.services.serve import ServeApp, ServeConfig

    assert isinstance(config, ServeConfig)
    log = logging.getLogger("netdicom.serve")
    app = ServeApp(config)
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
