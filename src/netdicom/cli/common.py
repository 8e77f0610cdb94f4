"""What every subcommand shares: option types, peer parsing, running a coroutine."""

from __future__ import annotations

import sys
from collections.abc import Coroutine
from typing import Annotated, Any, TypeVar

import typer

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
