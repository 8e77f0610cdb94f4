"""`netdicom find [PEER] KEY=VALUE...`: C-FIND (PS3.4 C.4.1), the DICOM query."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

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
    install_interrupt,
    on_interrupt,
    release_or_warn,
    resolve_peer,
    run,
    stderr,
)

EXAMPLES = """\
Examples:

  netdicom find PACS@10.0.0.5:104 PatientName='DOE*' StudyDate=20240101-20240131

  netdicom find pacs --level series StudyInstanceUID=1.2.3 Modality= --csv

  netdicom find --level study 0010,0020=PAT001 --json > studies.json   (default peer)
"""


class LevelChoice(enum.StrEnum):
    patient = "patient"
    study = "study"
    series = "series"
    image = "image"


class ModelChoice(enum.StrEnum):
    patient = "patient"
    study = "study"


def find(
    args: Annotated[
        list[str] | None,
        typer.Argument(
            help="[PEER] then KEY=VALUE matching keys; KEY= asks for a return key. PEER is "
            "HOST:PORT, AET@HOST:PORT or a configured peer name (default: the default peer). "
            "KEY is a keyword (PatientName) or a tag (0010,0010). Wildcards (* ?) match text; "
            "dates and times take one value or a range (20240101-20240131, 20240101-, "
            "-20241231), never wildcards.",
            show_default=False,
            metavar="[PEER] KEY=VALUE...",
        ),
    ] = None,
    level: Annotated[
        LevelChoice, typer.Option("--level", help="Query/Retrieve Level.", case_sensitive=False)
    ] = LevelChoice.study,
    model: Annotated[
        ModelChoice,
        typer.Option(
            "--model", help="Information model: patient or study root.", case_sensitive=False
        ),
    ] = ModelChoice.study,
    json_output: Annotated[
        bool, typer.Option("--json", help="A JSON array in the DICOM JSON model (PS3.18 F.2).")
    ] = False,
    csv_output: Annotated[bool, typer.Option("--csv", help="CSV with a header row.")] = False,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Also write each response as a DICOM file in DIR.", metavar="DIR"
        ),
    ] = None,
    max_results: Annotated[
        int | None,
        typer.Option("--max-results", help="Send C-CANCEL after N matches.", min=1),
    ] = None,
    no_defaults: Annotated[
        bool,
        typer.Option("--no-defaults", help="Ask only for the keys given, no default return keys."),
    ] = False,
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
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """Query a peer with C-FIND and print the matches."""
    from netdicom.archive.matching import Level, Model
    from netdicom.services.find_scu import (
        BadKey,
        build_identifier,
        parse_keys,
        wanted_keys,
    )
    from netdicom.services.peer import BadPeer

    if json_output and csv_output:
        raise typer.BadParameter("--json and --csv exclude each other", param_hint="--json")
    items = list(args or [])
    peer_text = items.pop(0) if items and "=" not in items[0] else None
    the_model = Model(model.value)
    the_level = Level[level.value.upper()]
    if the_level not in the_model.levels:
        raise typer.BadParameter(
            "the study root model has no PATIENT level: use --model patient",
            param_hint="--level",
        )
    try:
        # A time range across midnight with a date range is a night: asked as one date-time
        # range (combined matching, PS3.4 C.2.2.2.5.1). Only then: other date and time
        # ranges keep the meaning other tools give them (each matched apart).
        keys = parse_keys(items, combined=True)
        nights = [f"{key.keyword}={key.value}" for key in keys if key.night]
        combined = bool(nights)
        wanted = wanted_keys(the_level, the_model, keys, defaults=not no_defaults)
        identifier = build_identifier(the_level, wanted)
    except BadKey as exc:
        raise typer.BadParameter(str(exc), param_hint="KEY=VALUE") from None
    try:
        target = resolve_peer(peer_text)
    except BadPeer as exc:
        raise typer.BadParameter(str(exc), param_hint="PEER") from None
    mode = "json" if json_output else "csv" if csv_output else "table"
    security = ClientSecurity(
        tls, tls_cert, tls_key, tls_ca, tls_no_hostname_check, username, password
    )
    options = client_options(
        aet, aec, timeout, max_pdu, security, peer_text=peer_text, quiet=quiet, debug=debug
    )
    if out is not None:
        from netdicom.cli.common import check_folder, fail

        try:
            check_folder(out, "--out")  # before the query, not after its first match
        except OSError as exc:
            if json_output:
                print("[]")  # stdout is a JSON array whatever happens
            raise fail(exc, debug=debug, quiet=quiet) from None
    code = run(
        _find(
            target,
            options,
            the_model,
            identifier,
            list(wanted),
            mode,
            out,
            max_results,
            timeout,
            verbose,
            quiet,
            combined=combined,
            nights=nights,
        ),
        debug=debug,
        quiet=quiet,
    )
    raise typer.Exit(code)


async def _find(
    target: Any,
    options: Any,
    model: Any,
    identifier: Any,
    order: list[int],
    mode: Any,
    out: Path | None,
    max_results: int | None,
    timeout: float,
    verbose: bool,
    quiet: bool,
    *,
    combined: bool = False,
    nights: Sequence[str] = (),
) -> int:
    import asyncio

    from pydicom.datadict import keyword_for_tag

    from netdicom.cli.exit_codes import ExitCode
    from netdicom.core.dimse import status
    from netdicom.core.errors import DimseFailure
    from netdicom.render.find_output import make_writer
    from netdicom.services.find_scu import (
        find,
        find_contexts,
        first_response_number,
        write_response,
    )
    from netdicom.services.session import open_association

    columns = [
        (tag, keyword_for_tag(tag) or f"({tag >> 16:04X},{tag & 0xFFFF:04X})") for tag in order
    ]
    from netdicom.core.pdu import SOPClassExtendedNegotiation
    from netdicom.services.find_scu import COMBINED_DATE_TIME

    extended = (
        [SOPClassExtendedNegotiation(model.find_sop_class, COMBINED_DATE_TIME)] if combined else []
    )
    try:
        assoc = await open_association(target, options, find_contexts(model), extended=extended)
    except BaseException:
        # With --json, stdout is a JSON array whatever happens: `[]` when the association
        # failed (refused, rejected, a timeout, Ctrl-C); it was empty, and a script's JSON
        # parser failed where the exit code and stderr say what went wrong (walkthrough 7a).
        if mode == "json":
            make_writer(mode, columns).finish()
        raise
    if verbose and not quiet:
        from netdicom.render.negotiation import print_negotiation

        print_negotiation(assoc)
    if combined and not _combined_granted(assoc, model):
        # Matched apart, a time range across midnight matches nothing on any day.
        assoc.abort()
        if mode == "json":
            make_writer(mode, columns).finish()
        stderr(
            f"netdicom: error: {', '.join(nights)} ends before it starts: a night, with its "
            "date range, only where the peer matches date and time together, and it did not "
            "accept combined date-time matching (PS3.4 C.2.2.2.5.1): ask each side of "
            "midnight apart"
        )
        return int(ExitCode.USAGE)
    # -q silences the text; asked for, JSON and CSV are printed all the same, as store, echo,
    # get and move print their JSON (find printed nothing, and `| jq` failed; a CSV file
    # written by a script with -q was empty, walkthrough 6d).
    writer = make_writer(mode, columns) if not quiet or mode != "table" else None
    count = 0
    next_number = 1 if out is None or not out.is_dir() else first_response_number(out)
    unsupported = False

    def on_match(ds: Any, code: int) -> None:
        nonlocal count, unsupported, next_number
        count += 1
        unsupported = unsupported or code == status.PENDING_WARNING
        if writer is not None:
            writer.add(ds)
        if out is not None:
            next_number = write_response(ds, out, next_number, model.find_sop_class) + 1

    # Ctrl-C sends C-CANCEL (the peer ends the query with FE00, as for --max-results); a
    # second one aborts, as in get and move.
    cancel = asyncio.Event()
    install_interrupt(cancel, assoc.abort)
    try:
        result = await find(
            assoc,
            model,
            identifier,
            on_match,
            max_results=max_results,
            cancel=cancel,
            timeout=timeout,
        )
    except BaseException:
        assoc.abort()
        if cancel.is_set():
            stderr(f"{count} match{'es' if count != 1 else ''} before the abort")
            return int(ExitCode.INTERRUPTED)
        raise
    finally:
        on_interrupt(None)
        if writer is not None:
            writer.finish()
    await release_or_warn(assoc, quiet=quiet)
    if unsupported and not quiet:
        # FF01 (PS3.4 C.4.1.1.4): a key was not matched, so matches may include what it
        # would have excluded (e.g. a series key such as Modality at study level).
        stderr(
            "netdicom: warning: the peer did not support one or more keys (status FF01): "
            "they were not used for matching; check --level and the keys of that level"
        )
    name = status.status_name(result.status, "find")
    interrupted = cancel.is_set()
    if result.status == status.SUCCESS or (result.status == status.CANCEL and result.cancelled):
        if not quiet:
            what = f"{result.matches} match{'es' if result.matches != 1 else ''}"
            extra = ""
            if interrupted:
                extra = " (cancelled: interrupted)"
            elif result.cancelled:
                extra = f" (cancelled after --max-results {max_results})"
            stderr(f"{what}{extra}")
        return int(ExitCode.INTERRUPTED) if interrupted else 0
    comment = f": {result.error_comment}" if result.error_comment else ""
    if status.category(result.status) is status.StatusCategory.WARNING:
        # The query ended and its matches are all shown: a warning, not a failure (PS3.7 C.3).
        if not quiet:
            stderr(f"{result.matches} match{'es' if result.matches != 1 else ''}")
            stderr(f"netdicom: warning: C-FIND ended with {name} (0x{result.status:04X}){comment}")
        return 0
    raise DimseFailure(
        result.status,
        f"C-FIND failed: {name} (0x{result.status:04X}){comment}",
        hint=_hierarchy_hint(model, identifier, result.status),
    )


def _combined_granted(assoc: Any, model: Any) -> bool:
    """Whether the peer accepted combined date-time matching (byte 2 of its SOP Class
    Extended Negotiation answer, PS3.4 Table C.5-2)."""
    negotiated = assoc.negotiated
    answer: bytes = b""
    if negotiated is not None:
        answer = negotiated.extended_negotiation.get(model.find_sop_class, b"")
    return len(answer) > 1 and answer[1] == 1


def _hierarchy_hint(model: Any, identifier: Any, code: int) -> str | None:
    """A refused query below the top level whose identifier names no single entity of the
    level above: a hierarchical SCP (pynetdicom's qrscp, the baseline of PS3.4 C.4.1.3.1)
    wants that unique key, and said so only in its own log (walkthrough 7c)."""
    from netdicom.archive.matching import UNIQUE_KEYS, Level

    if code != 0xA900 and code >> 12 != 0xC:
        return None
    level = Level[str(identifier.QueryRetrieveLevel)]
    above = [lv for lv in model.levels if lv < level]

    def value(tag: int) -> str:
        element = identifier.get(tag)
        found = "" if element is None or element.value is None else element.value
        if isinstance(found, str | bytes):
            return str(found).strip()
        return "\\".join(map(str, found))  # a list of values (pydicom's MultiValue)

    missing = [lv for lv in above if not value(UNIQUE_KEYS[lv]) or "\\" in value(UNIQUE_KEYS[lv])]
    if not missing:
        return None
    from pydicom.datadict import keyword_for_tag

    key = keyword_for_tag(UNIQUE_KEYS[missing[-1]])
    return (
        f"a hierarchical peer needs one {key} (a level above {level.name}) to query "
        f"there: give {key}=..., found with --level {missing[-1].name.lower()} first"
    )
