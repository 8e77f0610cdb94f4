"""`netdicom move [PEER] KEY=VALUE... --dest AE`: C-MOVE (PS3.4 C.4.2). With `--listen PORT`
it receives the instances itself: a storage receiver starts before the C-MOVE, and `--dest`
defaults to our own AE title."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from netdicom.cli.common import (
    AecOption,
    AetOption,
    ClientSecurity,
    DebugOption,
    MaxPduOption,
    NoProgressOption,
    OnDuplicate,
    PasswordOption,
    QuietOption,
    RetrievedDuplicateOption,
    TimeoutOption,
    TlsCaOption,
    TlsCertOption,
    TlsKeyOption,
    TlsNoHostnameCheckOption,
    TlsOption,
    UsernameOption,
    VerboseOption,
    calling_ae_title,
    client_options,
    finite_seconds,
    interrupted_text,
    resolve_peer,
    run,
    stderr,
)
from netdicom.cli.get import (
    DEFAULT_LAYOUT,
    RETRIEVE_PANEL,
    AllOption,
    ArgsArgument,
    DryRunOption,
    JsonOption,
    LayoutOption,
    LevelChoice,
    LevelOption,
    ModelChoice,
    ModelOption,
    error_text,
    exit_code,
    nothing_to_retrieve,
    parse_request,
    plan_or_report,
    send_requests,
    show_plan,
    usable_out,
)
from netdicom.core.address import host_port
from netdicom.core.printable import quoted

EXAMPLES = """\
Examples:

  netdicom move PACS@10.0.0.5:104 StudyInstanceUID=1.2.840.1234 --dest WORKSTATION

  netdicom move pacs PatientID=PAT001 --level study --listen 11113 --out ./moved

  netdicom move pacs AccessionNumber=A123 --dest ARCHIVE2 --dry-run
"""


def move(
    args: ArgsArgument = None,
    dest: Annotated[
        str | None,
        typer.Option(
            "--dest",
            help="Move Destination AE title (the peer must know its address); with --listen "
            "it defaults to --aet.",
        ),
    ] = None,
    listen: Annotated[
        int | None,
        typer.Option(
            "--listen",
            help="Receive the instances here: listen on PORT before sending the C-MOVE.",
            min=1,  # the peer sends to the port it has configured for us, never to 0
            max=65535,
            rich_help_panel=RETRIEVE_PANEL,
        ),
    ] = None,
    listen_host: Annotated[
        str,
        typer.Option(
            "--listen-host",
            help="Address to listen on with --listen.",
            rich_help_panel=RETRIEVE_PANEL,
        ),
    ] = "0.0.0.0",
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="With --listen: folder to store the instances in (created if missing; "
            "default: the current folder).",
            metavar="DIR",
            rich_help_panel=RETRIEVE_PANEL,
            show_default=False,
        ),
    ] = None,
    grace: Annotated[
        float,
        typer.Option(
            "--grace",
            callback=finite_seconds,
            help="With --listen: seconds to wait after the final response for open "
            "sub-associations.",
            min=0,
            rich_help_panel=RETRIEVE_PANEL,
        ),
    ] = 5.0,
    layout: LayoutOption = DEFAULT_LAYOUT,
    on_duplicate: RetrievedDuplicateOption = OnDuplicate.keep,
    everything: AllOption = False,
    level: LevelOption = LevelChoice.study,
    model: ModelOption = ModelChoice.study,
    dry_run: DryRunOption = False,
    json_output: JsonOption = False,
    aet: AetOption = None,
    aec: AecOption = "ANY-SCP",
    timeout: TimeoutOption = 30.0,
    max_pdu: MaxPduOption = 262144,
    tls: TlsOption = False,
    tls_cert: TlsCertOption = None,
    tls_key: TlsKeyOption = None,
    tls_ca: TlsCaOption = None,
    tls_no_hostname_check: TlsNoHostnameCheckOption = False,
    username: UsernameOption = None,
    password: PasswordOption = None,
    verbose: VerboseOption = False,
    no_progress: NoProgressOption = False,
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """Ask a peer to send instances to an AE with C-MOVE (or to ourselves with --listen)."""
    from netdicom.services.peer import BadPeer

    peer_text, the_model, the_level, keys, requests = parse_request(
        list(args or []), level, model, everything=everything
    )
    if listen is not None:
        aet = calling_ae_title(aet, peer_text)  # the destination: the title we call with
    destination = dest or (aet if listen is not None else None)
    if destination is None and not dry_run:
        raise typer.BadParameter(
            "give --dest AE (an AE title the peer knows), or --listen PORT to receive here",
            param_hint="--dest",
        )
    if destination is not None and not 0 < len(destination.strip()) <= 16:
        raise typer.BadParameter("an AE title has 1 to 16 characters", param_hint="--dest")
    if listen is None and not quiet:
        # The instances go to DEST, wherever that is: nothing is written here.
        given = [name for name, used in (("--out", out is not None),
                                         ("--layout", layout != DEFAULT_LAYOUT),
                                         ("--on-duplicate", on_duplicate is not OnDuplicate.keep))
                 if used]  # fmt: skip
        if given:
            stderr(f"netdicom: warning: {', '.join(given)}: used only with --listen; ignored")
    if listen is not None:
        from netdicom.archive.layout import Layout, LayoutError

        try:
            Layout.parse(layout)
        except LayoutError as exc:
            raise typer.BadParameter(str(exc), param_hint="--layout") from None
    try:
        target = resolve_peer(peer_text)
    except BadPeer as exc:
        raise typer.BadParameter(str(exc), param_hint="PEER") from None
    security = ClientSecurity(
        tls, tls_cert, tls_key, tls_ca, tls_no_hostname_check, username, password
    )
    options = client_options(
        aet, aec, timeout, max_pdu, security, peer_text=peer_text, quiet=quiet, debug=debug
    )
    if listen is not None and not dry_run:
        usable_out(out or Path("."), "move", json_output=json_output, quiet=quiet, debug=debug)
    code = run(
        _move(
            target,
            options,
            the_model,
            the_level,
            keys,
            requests,
            destination or "",
            listen,
            listen_host,
            out or Path("."),
            layout,
            grace,
            dry_run,
            json_output,
            timeout,
            verbose,
            quiet,
            no_progress=no_progress,
            on_duplicate=on_duplicate.value,
        ),
        debug=debug,
        quiet=quiet,
    )
    raise typer.Exit(code)


async def _move(
    target: Any,
    options: Any,
    model: Any,
    level: Any,
    keys: dict[int, str],
    requests: Any,
    destination: str,
    listen: int | None,
    listen_host: str,
    out: Path,
    layout: str,
    grace: float,
    dry_run: bool,
    json_output: bool,
    timeout: float,
    verbose: bool,
    quiet: bool,
    *,
    on_duplicate: str = "keep",
    no_progress: bool = False,
) -> int:
    import asyncio
    import contextlib
    import dataclasses

    from netdicom.archive.writer import DuplicatePolicy
    from netdicom.core.acse import ProposedContext
    from netdicom.core.dimse import status
    from netdicom.core.errors import TimeoutExpired
    from netdicom.render.retrieve_output import RetrieveProgress, bar_enabled, report
    from netdicom.services.move_scu import MoveReceiver, move
    from netdicom.services.retrieve_common import (
        Received,
        RetrieveOutcome,
        build_identifier,
        sop_class_for,
        tidy_incoming,
    )
    from netdicom.services.session import open_association

    if listen is not None and not dry_run:
        from netdicom.transport.server import check_listen

        # Before the C-FIND: a port in use was found only after the query had run.
        check_listen(listen_host, listen)
    resolution = await plan_or_report(
        "move",
        json_output,
        listen is not None,
        target,
        options,
        model,
        level,
        keys,
        requests,
        timeout,
        quiet,
    )
    if dry_run:
        return show_plan(resolution, "move", json_output=json_output)
    if not resolution.requests:
        return nothing_to_retrieve(
            "move",
            json_output=json_output,
            quiet=quiet,
            checked=listen is not None,
            skipped=resolution.skipped,
        )
    progress = RetrieveProgress("move", enabled=bar_enabled(quiet or json_output or no_progress))
    receiver: MoveReceiver | None = None
    contexts = [ProposedContext(sop_class_for("move", model), _SYNTAXES)]
    outcomes: list[RetrieveOutcome] = []
    requested: list[int] = []  # Message IDs of the C-MOVE-RQs sent
    interrupted = False
    error: Exception | None = None
    cancelled: asyncio.CancelledError | None = None
    with tidy_incoming(out) if listen is not None else contextlib.nullcontext():
        try:
            if listen is not None:
                out.mkdir(parents=True, exist_ok=True)
                receiver = MoveReceiver(
                    out,
                    ae_title=destination,
                    host=listen_host,
                    port=listen,
                    layout=layout,
                    on_duplicate=DuplicatePolicy(on_duplicate),
                    # The receiver is a server: the client TLS context of --tls cannot accept
                    # connections, so it listens in plain (sub-associations come from the peer).
                    transport=dataclasses.replace(options.transport, ssl_context=None),
                    on_received=progress.received,
                )
                await receiver.start()
                if not quiet:
                    stderr(f"receiving on {host_port(listen_host, receiver.port)} as {destination}")
            try:
                assoc = await open_association(target, options, contexts)
                if verbose and not quiet:
                    from netdicom.render.negotiation import print_negotiation

                    print_negotiation(assoc)

                ours = options.calling_ae

                def expect(message_id: int) -> None:
                    requested.append(message_id)
                    if receiver is not None:
                        receiver.expected = (ours, message_id)

                async def send(request: Any, cancel: Any) -> RetrieveOutcome:
                    return await move(
                        assoc,
                        model,
                        build_identifier(request, model),
                        destination,
                        on_progress=progress.update,
                        on_request=expect,
                        cancel=cancel,
                        timeout=timeout,
                    )

                interrupted = await send_requests(
                    assoc, resolution.requests, send, outcomes, progress=progress,
                    quiet=quiet or json_output,
                    last=lambda outcome: outcome.status == status.MOVE_DESTINATION_UNKNOWN,
                )  # fmt: skip
            finally:
                if receiver is not None and receiver.started:
                    await receiver.finish(grace)
        except Exception as exc:
            # What arrived stays stored: say so (stdout too with --json) before the error.
            error = exc
        except asyncio.CancelledError as exc:
            # Ctrl-C before our own handler was in place: reported as any interruption.
            cancelled, interrupted = exc, True
        received: list[Received] = list(receiver.received) if receiver is not None else []
        text = interrupted_text() if interrupted else None if error is None else error_text(error)
        # Only our own receiver shows what arrived; another AE's we cannot check.
        out_dir = str(out) if receiver is not None else None
        stray = receiver.not_asked_for(resolution.requests) if receiver is not None else []
        problems = report("move", outcomes, received, out_dir=out_dir, json_output=json_output,
                          quiet=quiet, error=text, more=stray)  # fmt: skip
        # On stderr with --json too (only -q silences them): a connection to our listener
        # that was not DICOM vanished from a monitoring script's view.
        if not quiet:
            if any(o.status == status.MOVE_DESTINATION_UNKNOWN for o in outcomes):
                where = f"this host, port {receiver.port}" if receiver else "its host and port"
                stderr(
                    f"hint: the peer does not know the move destination {quoted(destination)}: add "
                    f"{destination} with {where} to its list of destination AEs"
                )
            if isinstance(error, TimeoutExpired) and requested and not received:
                # A C-MOVE SCP may send nothing while it tries the destination (serve waits up
                # to its --dimse-timeout, 60 s, for each answer): the silence may be that.
                stderr(
                    f"hint: the peer may still be trying to reach {destination}: check that it "
                    "can, or give it longer with --timeout"
                )
            failed = sum(o.final.failed or 0 for o in outcomes)
            completed = sum(o.final.completed or 0 for o in outcomes)
            # Unable to process (Cxxx): the peer could not read or send its files; the
            # destination was not the problem.
            unprocessable = any(o.status >> 12 == 0xC for o in outcomes)
            if (
                receiver is not None
                and (failed or completed)  # completed: sent elsewhere (walkthrough 6d)
                and not received
                and not receiver.not_dicom
                and not unprocessable
            ):
                where = host_port(listen_host, receiver.port)
                if receiver.associations:
                    # It connected and could send nothing: the AE mapping is right, what we
                    # accepted is not (it said "nothing reached", walkthrough 7c).
                    why = (
                        f"we refused {'; '.join(receiver.refused_contexts[:3])}"
                        if receiver.refused_contexts
                        else "it may hold them in a transfer syntax it cannot convert to "
                        "those we accepted (-v on its side, or `netdicom get --ts`)"
                    )
                    stderr(
                        f"hint: the peer connected to {where} ({receiver.associations} "
                        f"association(s)) but could send nothing here: {why}"
                    )
                else:
                    # The peer could not reach us: nothing ever connected to the listener.
                    stderr(
                        f"hint: nothing reached {where}: check that the peer maps "
                        f"{destination} to this host and port {receiver.port}"
                    )
            if receiver is not None and receiver.other_called:
                # An empty title is named as such (it showed as nothing: "as , not MOVER").
                names = ", ".join(quoted(n) if n.strip() else "an empty title"
                                  for n in sorted(receiver.other_called))  # fmt: skip
                stderr(
                    f"netdicom: warning: the peer called this receiver as {names}, not "
                    f"{destination}: accepted; check the AE title it has for this host and port"
                )
            if receiver is not None and receiver.not_dicom:
                stderr(
                    f"netdicom: warning: {len(receiver.not_dicom)} connection(s) to the "
                    f"receiver did not speak DICOM; the first: {receiver.not_dicom[0]}"
                )
            if receiver is not None and receiver.unattributed:
                number = receiver.unattributed
                noun = "instance" if number == 1 else "instances"
                stderr(
                    f"netdicom: warning: {number} {noun} arrived for another move request "
                    "(Move Originator Message ID); stored anyway"
                )
        if cancelled is not None:
            raise cancelled
        if error is not None:
            raise error
    return exit_code(
        outcomes, received, interrupted, "move", problems, resolution.skipped, quiet=quiet
    )


_SYNTAXES = ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2")
