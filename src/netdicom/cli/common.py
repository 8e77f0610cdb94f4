"""What every subcommand shares: option types, peer resolution, running a coroutine."""

from __future__ import annotations

import sys
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

if TYPE_CHECKING:
    from netdicom.services.peer import Peer

T = TypeVar("T")

AetOption = Annotated[str, typer.Option("--aet", help="Our (calling) AE title.", show_default=True)]
AecOption = Annotated[
    str,
    typer.Option("--aec", help="The peer's (called) AE title; AET@HOST:PORT overrides it."),
]
TimeoutOption = Annotated[
    float,
    typer.Option(
        "--timeout",
        help="Seconds to wait for the connection, the association and each DIMSE reply.",
        min=0.1,
    ),
]
MaxPduOption = Annotated[
    int,
    typer.Option("--max-pdu", help="Largest P-DATA-TF we accept, in bytes (0: no limit).", min=0),
]
VerboseOption = Annotated[
    bool, typer.Option("-v", "--verbose", help="Show the negotiation (proposed vs accepted).")
]
QuietOption = Annotated[bool, typer.Option("-q", "--quiet", help="Print nothing; exit code only.")]
DebugOption = Annotated[bool, typer.Option("--debug", help="Protocol trace and tracebacks.")]


def stderr(message: str) -> None:
    sys.stderr.write(message + "\n")


def fail(exc: BaseException, *, debug: bool, quiet: bool = False) -> typer.Exit:
    """Report `exc` on stderr and return the typer.Exit carrying its exit code."""
    from netdicom.cli.exit_codes import classify

    code, message, hint = classify(exc)
    if debug:
        import traceback

        traceback.print_exception(exc)
    if not quiet:
        stderr(f"netdicom: error: {message}")
        if hint:
            stderr(f"hint: {hint}")
    return typer.Exit(int(code))


def run(coro: Coroutine[Any, Any, T], *, debug: bool, quiet: bool = False) -> T:
    """Run `coro` to completion, turning any failure into the documented exit code."""
    import asyncio
    import logging

    if debug:
        logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s")
    try:
        return asyncio.run(coro)
    except KeyboardInterrupt as exc:
        raise fail(exc, debug=False, quiet=quiet) from None
    except typer.Exit:
        raise
    except Exception as exc:
        raise fail(exc, debug=debug, quiet=quiet) from None


def resolve_peer(text: str | None) -> Peer:
    """PEER as given on the command line: HOST:PORT, AET@HOST:PORT or a peer name from the
    configuration file; None means the default peer ($NETDICOM_PEER, else `default`).

    Raises BadPeer (a usage error) for what cannot be resolved, typer.Exit(3) for a broken
    configuration file."""
    from netdicom.services.peer import BadPeer, Peer, parse_peer

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
        raise BadPeer(
            f"{name!r} is not HOST:PORT, AET@HOST:PORT or a peer named in {where} "
            f"(configured: {known})"
        )
    return Peer(host=named.host, port=named.port, ae_title=named.aet)
