"""`netdicom echo [PEER]`: C-ECHO, the DICOM ping (PS3.4 Annex A)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from netdicom.cli.common import (
    AecOption,
    AetOption,
    ClientSecurity,
    DebugOption,
    MaxPduOption,
    PasswordOption,
    QuietOption,
    TimeoutOption,
    TlsCaOption,
    TlsCertOption,
    TlsKeyOption,
    TlsNoHostnameCheckOption,
    TlsOption,
    UsernameOption,
    VerboseOption,
    client_options,
    interrupted_text,
    resolve_peer,
    run,
    stderr,
)
from netdicom.core.address import host_port

if TYPE_CHECKING:
    from netdicom.services.echo import EchoReply
    from netdicom.services.peer import Peer
    from netdicom.services.session import ClientOptions

# What the JSON's "error" says after Ctrl-C (exit 130).

EXAMPLES = """\
Examples:

  netdicom echo 127.0.0.1:11112

  netdicom echo PACS@10.0.0.5:104 --aet MYWORKSTATION --repeat 10

  netdicom echo pacs            (a peer named in ~/.config/netdicom/config.toml)
"""


def echo(
    peer: Annotated[
        str | None,
        typer.Argument(
            help="HOST:PORT, AET@HOST:PORT or a configured peer name; default: the default peer.",
            show_default=False,
            metavar="PEER",
        ),
    ] = None,
    aet: AetOption = None,
    aec: AecOption = "ANY-SCP",
    repeat: Annotated[
        int, typer.Option("--repeat", help="Send N C-ECHOs on one association.", min=1)
    ] = 1,
    timeout: TimeoutOption = 30.0,
    max_pdu: MaxPduOption = 262144,
    tls: TlsOption = False,
    tls_cert: TlsCertOption = None,
    tls_key: TlsKeyOption = None,
    tls_ca: TlsCaOption = None,
    tls_no_hostname_check: TlsNoHostnameCheckOption = False,
    username: UsernameOption = None,
    password: PasswordOption = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the result as one JSON object on stdout.")
    ] = False,
    verbose: VerboseOption = False,
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """Check that a peer answers C-ECHO (the DICOM ping)."""
    from netdicom.services.peer import BadPeer

    try:
        target = resolve_peer(peer)
    except BadPeer as exc:
        raise typer.BadParameter(str(exc), param_hint="PEER") from None
    security = ClientSecurity(
        tls, tls_cert, tls_key, tls_ca, tls_no_hostname_check, username, password
    )
    options = client_options(
        aet, aec, timeout, max_pdu, security, peer_text=peer, quiet=quiet, debug=debug
    )
    code = run(
        _echo(target, options, repeat, timeout, verbose, quiet, json_output),
        debug=debug,
        quiet=quiet,
    )
    raise typer.Exit(code)


async def _echo(
    target: object,
    options: ClientOptions,
    repeat: int,
    timeout: float,
    verbose: bool,
    quiet: bool,
    json_output: bool = False,
) -> int:
    import asyncio
    import json

    from netdicom.cli.exit_codes import classify
    from netdicom.core.dimse import status
    from netdicom.core.errors import NetDicomError
    from netdicom.services.echo import ECHO_CONTEXTS, echo
    from netdicom.services.peer import Peer
    from netdicom.services.session import open_association

    assert isinstance(target, Peer)
    called = target.ae_title or options.called_ae
    summary: dict[str, object] = {
        "peer": host_port(target.host, target.port),
        "called_ae": called,
        "calling_ae": options.calling_ae,
    }
    replies: list[EchoReply] = []
    try:
        assoc = await open_association(target, options, ECHO_CONTEXTS)
        if verbose and not quiet:
            from netdicom.render.negotiation import print_negotiation

            print_negotiation(assoc)
        try:
            await echo(assoc, repeat, timeout, replies)
        except BaseException:
            assoc.abort()
            raise
    except NetDicomError as exc:
        if json_output:
            # Scripts reading --json get an object whatever happened, as with store and get,
            # with every documented key (README, Machine output): null where unknown.
            print(json.dumps({**summary, "echoes": 0, "succeeded": 0, "status": None,
                              "status_name": None, "error_comment": None, "round_trip_ms": None,
                              "error": classify(exc)[1]}))  # fmt: skip
        raise
    except asyncio.CancelledError:
        # Ctrl-C (common.run; the association is aborted): the echoes done so far, as ping
        # does, then exit 130.
        _show(summary, replies, called, target, quiet=quiet, json_output=json_output,
              error=interrupted_text())  # fmt: skip
        raise
    failed = [r for r in replies if not _succeeded(r.status)]
    # Whether the peer releases properly is part of what an echo checks (dcmtk's echoscu
    # fails on it too): a failed release is the command's error, unless a C-ECHO failed
    # already (the more telling answer, shown first). Released before the output, so that
    # --json can carry it.
    release_error: NetDicomError | None = None
    try:
        await assoc.release()
    except NetDicomError as exc:
        release_error = exc
    _show(summary, replies, called, target, quiet=quiet, json_output=json_output,
          error=None if release_error is None else classify(release_error)[1],
          one=repeat == 1)  # fmt: skip
    if not quiet:
        for reply in failed[:1]:
            comment = f": {reply.error_comment}" if reply.error_comment else ""
            stderr(
                f"netdicom: error: C-ECHO failed with status 0x{reply.status:04X} "
                f"({status.status_name(reply.status, 'echo')}){comment}"
            )
        warned = [r for r in replies if r.status != status.SUCCESS and _succeeded(r.status)]
        for reply in warned[:1]:
            # A warning is an answer (exit 0, as dcmtk's echoscu does), with its words shown.
            comment = f": {reply.error_comment}" if reply.error_comment else ""
            stderr(
                f"netdicom: warning: C-ECHO answered with status 0x{reply.status:04X} "
                f"({status.status_name(reply.status, 'echo')}){comment}"
            )
    if release_error is not None:
        if not failed:
            raise release_error
        if not quiet:
            stderr(f"netdicom: error: then: {classify(release_error)[1]}")
    return 1 if failed else 0


def _show(
    summary: dict[str, object],
    replies: list[EchoReply],
    called: str,
    target: Peer,
    *,
    quiet: bool,
    json_output: bool,
    error: str | None,
    one: bool = False,
) -> None:
    """The result on stdout: one JSON object, or one line (the reply, or the round-trip
    statistics). Without a reply (Ctrl-C before the first), JSON only: null where unknown."""
    import json

    from netdicom.core.dimse import status

    failed = [r for r in replies if not _succeeded(r.status)]
    times = sorted(r.seconds * 1000 for r in replies)
    if json_output:
        shown = None if not replies else replies[-1] if not failed else failed[0]
        last = None if shown is None else shown.status
        summary |= {
            "echoes": len(replies),
            "succeeded": len(replies) - len(failed),
            "status": last,
            "status_name": None if last is None else status.status_name(last, "echo"),
            "error_comment": None if shown is None else shown.error_comment,
            "round_trip_ms": {
                "min": round(times[0], 3),
                "median": round(_median(times), 3),
                "max": round(times[-1], 3),
            }
            if times
            else None,
            "error": error,
        }
        print(json.dumps(summary))
    elif quiet or not replies:
        return
    elif one:
        reply = replies[0]
        print(
            f"C-ECHO {called}@{host_port(target.host, target.port)}: "
            f"{status.status_name(reply.status, 'echo')} (0x{reply.status:04X}) "
            f"in {reply.seconds * 1000:.2f} ms"
        )
    else:
        print(
            f"C-ECHO {called}@{host_port(target.host, target.port)}: {len(replies) - len(failed)}/"
            f"{len(replies)} succeeded; round trip min {times[0]:.3f} ms, "
            f"median {_median(times):.3f} ms, max {times[-1]:.3f} ms"
        )


def _succeeded(code: int) -> bool:
    """Success or Warning (PS3.7 C.1, C.3): the peer answered; only a failure fails."""
    from netdicom.core.dimse import StatusCategory, category

    return category(code) in (StatusCategory.SUCCESS, StatusCategory.WARNING)


def _median(sorted_values: list[float]) -> float:
    # Not `statistics`: it costs ~5 ms to import, a noticeable part of an echo's start-up.
    middle = len(sorted_values) // 2
    if len(sorted_values) % 2:
        return sorted_values[middle]
    return (sorted_values[middle - 1] + sorted_values[middle]) / 2
