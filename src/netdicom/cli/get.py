"""`netdicom get [PEER] KEY=VALUE... --out DIR`: C-GET (PS3.4 C.4.3), instances come back on
the same association and are stored the way serve stores them."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

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
    client_options,
    install_interrupt,
    interrupted_text,
    on_interrupt,
    release_or_warn,
    resolve_peer,
    run,
    stderr,
)

if TYPE_CHECKING:
    from netdicom.services.retrieve_common import Unretrievable

EXAMPLES = """\
Examples:

  netdicom get PACS@10.0.0.5:104 StudyInstanceUID=1.2.840.1234 --out ./study

  netdicom get pacs PatientName='DOE*' StudyDate=20240101- --level study --out ./doe --dry-run

  netdicom get pacs --level series StudyInstanceUID=1.2.3 SeriesInstanceUID=1.2.3.4 --out .
"""

# netdicom.archive.layout.DEFAULT_LAYOUT (kept out of the CLI's import path; a test checks).
DEFAULT_LAYOUT = "{PatientID}/{StudyInstanceUID}/{SeriesInstanceUID}/{SOPInstanceUID}.dcm"
RETRIEVE_PANEL = "Retrieve"


class LevelChoice(enum.StrEnum):
    patient = "patient"
    study = "study"
    series = "series"
    image = "image"


class ModelChoice(enum.StrEnum):
    patient = "patient"
    study = "study"


ArgsArgument = Annotated[
    list[str] | None,
    typer.Argument(
        help="[PEER] then KEY=VALUE keys. Unique keys (StudyInstanceUID=...) are retrieved as "
        "given; any other key is first resolved to UIDs with a C-FIND. PEER is HOST:PORT, "
        "AET@HOST:PORT or a configured peer name (default: the default peer).",
        show_default=False,
        metavar="[PEER] KEY=VALUE...",
    ),
]
LevelOption = Annotated[
    LevelChoice, typer.Option("--level", help="Query/Retrieve Level.", case_sensitive=False)
]
ModelOption = Annotated[
    ModelChoice,
    typer.Option("--model", help="Information model: patient or study root.", case_sensitive=False),
]
DryRunOption = Annotated[
    bool,
    typer.Option("--dry-run", help="Resolve and show what would be retrieved; retrieve nothing."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="A JSON summary on stdout.")]
AllOption = Annotated[
    bool,
    typer.Option(
        "--all",
        help="Retrieve every entity of --level the peer lists (a C-FIND first, then their "
        "UIDs): keys that are all empty or * are refused without it.",
    ),
]
LayoutOption = Annotated[
    str,
    typer.Option(
        "--layout",
        help="Where each instance goes under DIR: {Keyword} fields of the data set; it "
        "must hold {SOPInstanceUID}.",
        rich_help_panel=RETRIEVE_PANEL,
    ),
]


def parse_request(
    items: list[str], level: LevelChoice, model: ModelChoice, *, everything: bool = False
) -> tuple[str | None, Any, Any, dict[int, str], Any]:
    """(peer text, model, level, keys, direct requests or None); usage errors as BadParameter."""
    from netdicom.archive.matching import Level, Model
    from netdicom.services.find_scu import BadKey, build_identifier, parse_keys
    from netdicom.services.retrieve_common import UnsafeRetrieve, direct_requests, find_keys

    peer_text = items.pop(0) if items and "=" not in items[0] else None
    the_model = Model(model.value)
    the_level = Level[level.value.upper()]
    if the_level not in the_model.levels:
        raise typer.BadParameter(
            "the study root model has no PATIENT level: use --model patient", param_hint="--level"
        )
    if not items and not everything:
        raise typer.BadParameter(
            "give the keys of what to retrieve, e.g. StudyInstanceUID=1.2.3 (or --all)",
            param_hint="KEY=VALUE",
        )
    try:
        keys = {key.tag: key.value for key in parse_keys(items)}
        requests = direct_requests(the_model, the_level, keys, everything=everything)
        if requests is None:
            # The resolving C-FIND's identifier, built now: what cannot be sent (a value its
            # SpecificCharacterSet cannot hold) is a usage error, not an internal one.
            build_identifier(the_level, find_keys(the_model, the_level, keys))
    except BadKey as exc:
        raise typer.BadParameter(str(exc), param_hint="KEY=VALUE") from None
    except UnsafeRetrieve as exc:
        raise typer.BadParameter(str(exc), param_hint="KEY=VALUE") from None
    return peer_text, the_model, the_level, keys, requests


async def plan(
    target: Any,
    options: Any,
    model: Any,
    level: Any,
    keys: dict[int, str],
    requests: Any,
    timeout: float,
    quiet: bool,
) -> Any:
    """The Resolution to retrieve: the direct request, or what a C-FIND resolved."""
    from netdicom.services.retrieve_common import Resolution, resolve

    if requests is not None:
        return Resolution(level, list(requests), entities=len(requests[0].values))
    resolution = await resolve(target, options, model, level, keys, timeout=timeout)
    if not quiet:
        noun = level.name.lower()
        plural = {"study": "studies", "series": "series"}.get(noun, noun + "s")
        what = _count(resolution.entities, noun, plural)
        if resolution.instances is not None and level.name != "IMAGE":
            what += f" ({_count(resolution.instances, 'instance', 'instances')})"
        verb = "matches" if resolution.entities == 1 else "match"
        stderr(f"C-FIND: {what} {verb}")
        for skipped in resolution.skipped:
            stderr(f"netdicom: warning: a match with {skipped.what} skipped ({skipped.why})")
    return resolution


def show_plan(resolution: Any, service: str, *, json_output: bool) -> int:
    """--dry-run: each retrieve identifier, one line, on stdout; with --json one object,
    `{"service", "dry_run": true, "plan": [{"QueryRetrieveLevel", key: value, ...}],
    "skipped": [{"match", "why"}]}`. The exit code the real run would have for what it leaves
    out: 1 when a match is skipped (it was 0 with an empty plan, walkthrough 7 verification)."""
    import json

    from pydicom.datadict import keyword_for_tag

    from netdicom.cli.exit_codes import ExitCode

    plan = [
        {"QueryRetrieveLevel": request.level.name}
        | {str(keyword_for_tag(tag)): value for tag, value in request.keys().items()}
        for request in resolution.requests
    ]
    skipped = [{"match": s.what, "why": s.why} for s in resolution.skipped]
    if json_output:
        print(json.dumps({"service": service, "dry_run": True, "plan": plan, "skipped": skipped}))
    else:
        for keys in plan:
            print(f"C-{service.upper()} " + " ".join(f"{k}={v}" for k, v in keys.items()))
    return int(ExitCode.FAILED) if skipped else int(ExitCode.OK)


def nothing_to_retrieve(
    service: Literal["get", "move"],
    *,
    json_output: bool,
    quiet: bool,
    checked: bool,
    skipped: Sequence[Unretrievable] = (),
) -> int:
    """The query matched nothing: exit 0, saying so (with --json, the usual summary, empty;
    `checked` False: a move to another AE, whose "stored" is null). Matches skipped for want
    of a usable unique key are not nothing: exit 1 (it was 0, "nothing to retrieve", for an
    instance the C-FIND had just found, walkthrough 6b)."""
    from netdicom.cli.exit_codes import ExitCode

    error = None
    if skipped:
        error = f"{len(skipped)} match(es) cannot be retrieved: {_why_left_out(skipped)}"
    if json_output:
        _empty_summary(service, checked, error)
    elif not quiet:
        stderr(f"nothing retrieved: {error}" if error else "nothing to retrieve")
    return int(ExitCode.FAILED) if skipped else 0


def usable_out(
    out: Path, service: Literal["get", "move"], *, json_output: bool, quiet: bool, debug: bool
) -> None:
    """Exit 3 now, before the peer is queried, when --out cannot be used (with --json, the
    usual summary carries the error)."""
    from netdicom.cli.common import check_folder, fail

    try:
        check_folder(out, "--out")
    except OSError as exc:
        if json_output:
            _empty_summary(service, True, str(exc))
        raise fail(exc, debug=debug, quiet=quiet) from None


def _why_left_out(skipped: Sequence[Any]) -> str:
    """Why the matches in `skipped` (retrieve_common.Unretrievable) were left out, in brief."""
    from netdicom.services.retrieve_common import NO_UNIQUE_KEY

    reasons = {s.why for s in skipped}
    if reasons == {NO_UNIQUE_KEY}:
        return "no usable unique key"
    if len(reasons) == 1 and len(skipped) == 1:
        return str(skipped[0].why)
    return "see the warnings above"


def _empty_summary(
    service: Literal["get", "move"], checked: bool, error: str | None = None
) -> None:
    """The --json summary of a command that retrieved nothing (`error`: why it ended)."""
    from netdicom.render.retrieve_output import summary_json

    print(summary_json(service, [], [], checked=checked, error=error))


async def send_requests(
    assoc: Any,
    requests: Sequence[Any],
    send: Callable[[Any, Any], Awaitable[Any]],
    outcomes: list[Any],
    *,
    progress: Any,
    quiet: bool,
    last: Callable[[Any], bool] = lambda outcome: False,
) -> bool:
    """The requests of a get or move, in turn on `assoc`, then its release. `send(request,
    cancel)` sends one and returns its outcome (None: send no more); `last(outcome)` says to
    stop after it. Ctrl-C cancels (C-CANCEL-RQ), a second one aborts: what that abort makes
    the request in progress raise is its consequence, not an error. Any other failure aborts
    the association and is raised; the outcomes so far are in `outcomes`. True when
    interrupted."""
    import asyncio
    import collections

    from netdicom.services.retrieve_common import one_at_a_time, single_requests

    cancel = asyncio.Event()
    aborted = False

    def abort() -> None:
        nonlocal aborted
        aborted = True
        assoc.abort()

    install_interrupt(cancel, abort)
    interrupted = False
    pending = collections.deque(requests)
    try:
        with progress:
            while pending:
                request = pending.popleft()
                outcome = await send(request, cancel)
                if outcome is None:
                    break
                if one_at_a_time(request, outcome) and not cancel.is_set():
                    # pynetdicom's qrscp cannot match a list of UIDs (C413 for the request,
                    # walkthrough 6 verification): the same UIDs, one request each.
                    if not quiet:
                        stderr(
                            f"netdicom: warning: the peer refused a list of "
                            f"{len(request.values)} UIDs (0x{outcome.status:04X}): asking "
                            "for them one at a time"
                        )
                    pending.extendleft(reversed(single_requests(request)))
                    continue
                outcomes.append(outcome)
                if cancel.is_set():
                    interrupted = True
                    break
                if last(outcome):
                    break
        # After our own A-ABORT (a second Ctrl-C) the release cannot succeed: nothing to say.
        await release_or_warn(assoc, quiet=quiet or aborted)
    except Exception:
        assoc.abort()
        if aborted:
            return True
        raise
    except BaseException:
        assoc.abort()
        raise
    finally:
        # The work is done: a Ctrl-C now stops what is left (the summary) as anywhere else.
        on_interrupt(None)
    return interrupted or aborted


def exit_code(
    outcomes: Any,
    received: Any,
    interrupted: bool,
    service: str,
    problems: Any = (),
    skipped: Sequence[Unretrievable] = (),
    *,
    quiet: bool = False,
) -> int:
    """0 all succeeded (or --max cancelled), 1 something failed (or a match was `skipped`,
    having no usable unique key, said last unless `quiet`), 130 Ctrl-C."""
    from netdicom.cli.exit_codes import ExitCode
    from netdicom.core.dimse import status

    if interrupted:
        return int(ExitCode.INTERRUPTED)
    for outcome in outcomes:
        if outcome.final.failed:
            return int(ExitCode.FAILED)  # whatever the status says (see check_counts)
        if outcome.status == status.CANCEL and outcome.cancelled:
            continue
        if outcome.status != status.SUCCESS:
            return int(ExitCode.FAILED)
    if skipped:
        if not quiet:  # said once more at the end: the last lines read "Success ... stored"
            stderr(
                f"netdicom: error: {len(skipped)} match(es) not retrieved: {_why_left_out(skipped)}"
            )
        return int(ExitCode.FAILED)
    if any(not r.ok for r in received) or any(p.fails for p in problems):
        return int(ExitCode.FAILED)
    return int(ExitCode.OK)


async def plan_or_report(
    service: Literal["get", "move"], json_output: bool, checked: bool, *args: Any
) -> Any:
    """`plan(*args)`; with --json, a resolving C-FIND that fails (or Ctrl-C before the
    association) still prints the summary, with its error: stdout was empty, and `| jq`
    got nothing to read."""
    import asyncio

    try:
        return await plan(*args)
    except (Exception, KeyboardInterrupt, asyncio.CancelledError) as exc:
        if json_output:
            interrupted = isinstance(exc, KeyboardInterrupt | asyncio.CancelledError)
            _empty_summary(service, checked, interrupted_text() if interrupted else error_text(exc))
        raise


def error_text(exc: BaseException) -> str:
    """The message the exit code table gives `exc` (for the "error" of --json)."""
    from netdicom.cli.exit_codes import classify

    return classify(exc)[1]


def get(
    args: ArgsArgument = None,
    out: Annotated[
        Path,
        typer.Option(
            "--out", help="Folder to store the instances in (created if missing).", metavar="DIR"
        ),
    ] = Path("."),
    level: LevelOption = LevelChoice.study,
    model: ModelOption = ModelChoice.study,
    sop_class: Annotated[
        list[str] | None,
        typer.Option(
            "--sop-class",
            help="Also propose a storage context for this SOP class UID; repeatable.",
            rich_help_panel=RETRIEVE_PANEL,
        ),
    ] = None,
    ts: Annotated[
        list[str] | None,
        typer.Option(
            "--ts",
            help="Receive instances in this transfer syntax (UID or keyword, e.g. "
            "JPEGBaseline8Bit): a context of its own per SOP class; repeatable. Replaces the "
            "default list of compressed syntaxes; explicit and implicit VR little endian are "
            "always proposed.",
            rich_help_panel=RETRIEVE_PANEL,
        ),
    ] = None,
    layout: LayoutOption = DEFAULT_LAYOUT,
    on_duplicate: RetrievedDuplicateOption = OnDuplicate.keep,
    everything: AllOption = False,
    max_instances: Annotated[
        int | None,
        typer.Option("--max", help="Send C-CANCEL after N instances arrived.", min=1),
    ] = None,
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
    """Retrieve instances with C-GET and store them in DIR."""
    from netdicom.services.peer import BadPeer

    peer_text, the_model, the_level, keys, requests = parse_request(
        list(args or []), level, model, everything=everything
    )
    from netdicom.archive.layout import Layout, LayoutError
    from netdicom.cli.serve import transfer_syntax_param

    try:
        syntaxes = [transfer_syntax_param(value) for value in ts or ()]
    except typer.BadParameter as exc:
        raise typer.BadParameter(exc.message, param_hint="--ts") from None

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
    if not dry_run:
        usable_out(out, "get", json_output=json_output, quiet=quiet, debug=debug)
    code = run(
        _get(
            target,
            options,
            the_model,
            the_level,
            keys,
            requests,
            out,
            layout,
            on_duplicate.value,
            list(sop_class or []),
            syntaxes,
            max_instances,
            dry_run,
            json_output,
            timeout,
            verbose,
            quiet,
            no_progress=no_progress,
        ),
        debug=debug,
        quiet=quiet,
    )
    raise typer.Exit(code)


async def _get(
    target: Any,
    options: Any,
    model: Any,
    level: Any,
    keys: dict[int, str],
    requests: Any,
    out: Path,
    layout: str,
    on_duplicate: str,
    extra_sop_classes: list[str],
    transfer_syntaxes: list[str],
    max_instances: int | None,
    dry_run: bool,
    json_output: bool,
    timeout: float,
    verbose: bool,
    quiet: bool,
    *,
    no_progress: bool = False,
) -> int:
    import asyncio

    from netdicom.archive.layout import Layout
    from netdicom.archive.writer import Archive, DuplicatePolicy
    from netdicom.render.retrieve_output import RetrieveProgress, bar_enabled, report
    from netdicom.services.get_scu import get, get_contexts, sop_classes_or_curated
    from netdicom.services.retrieve_common import (
        Kept,
        Received,
        RetrieveOutcome,
        build_identifier,
        tidy_incoming,
    )
    from netdicom.services.session import open_association
    from netdicom.services.store_scp import StorageSCP

    resolution = await plan_or_report(
        "get", json_output, True, target, options, model, level, keys, requests, timeout, quiet
    )
    if dry_run:
        return show_plan(resolution, "get", json_output=json_output)
    if not resolution.requests:
        return nothing_to_retrieve(
            "get", json_output=json_output, quiet=quiet, checked=True, skipped=resolution.skipped
        )
    sop_classes = sop_classes_or_curated(sorted(resolution.sop_classes), extra_sop_classes)
    proposal = get_contexts(model, sop_classes, transfer_syntaxes or None)
    if proposal.dropped and not quiet:
        named = ", ".join(proposal.dropped[:3]) + (", …" if len(proposal.dropped) > 3 else "")
        stderr(
            f"netdicom: warning: {_count(len(proposal.dropped), 'SOP class', 'SOP classes')} "
            f"left out (128 contexts at most; private ones first): {named}; their "
            "instances cannot come on this association"
        )
    with tidy_incoming(out):
        out.mkdir(parents=True, exist_ok=True)
        storage = StorageSCP(
            Archive(out, on_duplicate=DuplicatePolicy(on_duplicate), temp_shared=True),
            Layout.parse(layout),
        )
        kept = Kept(storage)  # also what a second Ctrl-C kept from being answered
        interrupted = False
        outcomes: list[RetrieveOutcome] = []
        # Every instance that arrived, also those of a request the association died in.
        received: list[Received] = []
        progress = RetrieveProgress("get", enabled=bar_enabled(quiet or json_output or no_progress))

        def on_received(item: Received) -> None:
            received.append(item)
            progress.received(item)

        error: Exception | None = None
        cancelled: asyncio.CancelledError | None = None
        scp_role = True  # granted for some storage SOP class
        try:
            assoc = await open_association(target, options, proposal.contexts, roles=proposal.roles)
            if verbose and not quiet:
                from netdicom.render.negotiation import print_negotiation

                print_negotiation(assoc)
            accepted = assoc.negotiated.accepted.values() if assoc.negotiated else ()
            scp_role = any(ctx.we_are_scp for ctx in accepted)

            async def send(request: Any, cancel: Any) -> RetrieveOutcome | None:
                left = None if max_instances is None else max_instances - len(received)
                if left is not None and left <= 0:
                    return None
                return await get(
                    assoc,
                    model,
                    build_identifier(request, model),
                    storage,
                    on_progress=progress.update,
                    on_received=on_received,
                    max_instances=left,
                    cancel=cancel,
                    timeout=timeout,
                )

            interrupted = await send_requests(
                assoc, resolution.requests, send, outcomes, progress=progress,
                quiet=quiet or json_output,
            )  # fmt: skip
        except Exception as exc:
            # What was stored stays stored: say so (stdout too with --json) before the error.
            error = exc
        except asyncio.CancelledError as exc:
            # Ctrl-C before our own handler was in place (the association being opened):
            # reported as any interruption (--json printed nothing), then on its way.
            cancelled, interrupted = exc, True
        kept.count_in(received)
        text = interrupted_text() if interrupted else None if error is None else error_text(error)
        problems = report("get", outcomes, received, out_dir=str(out), json_output=json_output,
                          quiet=quiet, error=text,
                          more=kept.not_asked_for(resolution.requests))  # fmt: skip
        if not quiet:  # warnings and hints on stderr, with --json too
            if not scp_role and not received:
                # No role item answered (or all refused): the default roles leave us SCU only
                # (PS3.7 D.3.3.4), and a conforming peer cannot send a single instance. (One
                # that sends anyway is accepted, and said so below.)
                stderr(
                    "netdicom: warning: the peer granted us the SCP role for no storage SOP "
                    "class (PS3.7 D.3.3.4): it cannot send instances over this C-GET; "
                    "`netdicom move --listen PORT` has it send them over an association of "
                    "its own"
                )
            for sop_class in sorted({s for o in outcomes for s in o.role_warnings}):
                stderr(
                    f"netdicom: warning: the peer sent {sop_class} without granting the SCP "
                    "role; accepted"
                )
            failed = any(o.final.failed and _maybe_context(o) for o in outcomes)
            # Failures we caused ourselves (an instance that came and that we refused, e.g.
            # for its UID) are no lead to the contexts left out.
            refused_here = sum(1 for r in received if not r.ok and r.status is not None)
            unexplained = sum(o.final.failed or 0 for o in outcomes) > refused_here
            if failed and unexplained and scp_role:
                said = " ".join(o.error_comment or "" for o in outcomes)
                unproposed = _unproposed_classes(said, proposal)
                # Only when a SOP class is what the peer could not send: for a transfer
                # syntax (Big Endian files of a CT) it sent the user after --sop-class.
                if not resolution.sop_classes and (unproposed or "sop class" in said.lower()):
                    stderr(_curated_hint(unproposed, len(proposal.roles)))
                if proposal.left_out and not unproposed:  # a class named: syntaxes no lead
                    stderr(_left_out_hint(proposal.left_out))
        if cancelled is not None:
            raise cancelled
        if error is not None:
            raise error
    return exit_code(
        outcomes, received, interrupted, "get", problems, resolution.skipped, quiet=quiet
    )


def _count(number: int, singular: str, plural: str) -> str:
    return f"{number} {singular if number == 1 else plural}"


def _maybe_context(outcome: Any) -> bool:
    """Whether the failures of `outcome` may come from a context we did not propose: the
    peer said nothing, or said something was not accepted. A reason of another kind (a file
    it could not read) makes the hint about the 128 contexts a wrong lead."""
    comment = (outcome.error_comment or "").lower()
    return not comment or "accept" in comment or "context" in comment or "syntax" in comment


def _unproposed_classes(said: str, proposal: Any) -> list[str]:
    """UIDs the peer's Error Comments (`said`) name that are neither a SOP class we proposed
    nor a transfer syntax (netdicom serve says "SOP class X not accepted")."""
    import re

    found = dict.fromkeys(re.findall(r"\d+(?:\.\d+){3,}", said))
    return [
        uid
        for uid in found
        if uid not in proposal.roles and not uid.startswith("1.2.840.10008.1.2")
    ]


def _curated_hint(unproposed: Sequence[str], proposed: int) -> str:
    """Why an instance may have failed when no C-FIND found the SOP classes (a request by
    unique keys alone): only the curated set was proposed, and an instance of another class
    (a vendor's private one, raw data) could not come. The hint spoke of transfer syntaxes
    and --ts, which cannot help (walkthrough 7a)."""
    named = f" (the peer names {unproposed[0]})" if unproposed else ""
    example = unproposed[0] if unproposed else "UID"
    return (
        f"hint: with unique keys alone no C-FIND found the SOP classes, so only a curated set "
        f"of {proposed} was proposed{named}: add --sop-class {example}, or give a key that "
        "needs a C-FIND (e.g. PatientID), which finds them"
    )


def _left_out_hint(left_out: Sequence[tuple[str, str]]) -> str:
    """Why an instance may have failed: the 128 contexts (PS3.8 §9.3.2.2) had no room for
    its transfer syntax with its SOP class, so the peer could not send it as it is."""
    from pydicom.uid import UID

    sop_class, ts = left_out[0]
    return (
        f"hint: {_count(len(left_out), 'context', 'contexts')} did not fit in the 128 (e.g. "
        f"{UID(ts).name} for {UID(sop_class).name}): a peer cannot send an instance in a "
        "transfer syntax not proposed for its SOP class. --ts TS proposes only the syntaxes "
        "you name; -v shows what was proposed"
    )
