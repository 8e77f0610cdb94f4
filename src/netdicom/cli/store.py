"""`netdicom store PEER PATH...`: send DICOM files with C-STORE (PS3.4 Annex B)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from netdicom.cli.common import (
    AecOption,
    AetOption,
    ClientSecurity,
    DebugOption,
    MaxPduOption,
    NoProgressOption,
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
    fail,
    has_default_peer,
    interrupted_text,
    names_a_configured_peer,
    resolve_peer,
    run,
    stderr,
)
from netdicom.core.printable import quoted

if TYPE_CHECKING:
    from collections.abc import Sequence

    from netdicom.services.planning import Skipped
    from netdicom.services.session import ClientOptions
    from netdicom.services.store_scu import FileOutcome, StoreReport
    from netdicom.transport.association import Association


EXAMPLES = """\
Examples:

  netdicom store 127.0.0.1:11112 image.dcm

  netdicom store PACS@10.0.0.5:104 -r ./study --aet MYWORKSTATION -j 4

  netdicom store 127.0.0.1:11112 -r ./series --json > results.jsonl
"""


def store(
    peer: Annotated[
        str,
        typer.Argument(
            help="HOST:PORT, AET@HOST:PORT or a configured peer name; may be left out when a "
            "default peer is configured (the first argument is then a path, unless it names "
            "a configured peer: write ./NAME for a folder of that name).",
            show_default=False,
            metavar="PEER",
        ),
    ],
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            help="DICOM files, or directories with -r.", show_default=False, metavar="PATHS..."
        ),
    ] = None,
    recursive: Annotated[
        bool, typer.Option("-r", "--recursive", help="Walk directories for files.")
    ] = False,
    associations: Annotated[
        int,
        typer.Option(
            "-j", "--associations", help="Send over N associations in parallel.", min=1, max=64
        ),
    ] = 1,
    window: Annotated[
        int,
        typer.Option(
            "--window",
            help="Propose up to N C-STOREs outstanding per association (asynchronous "
            "operations window, PS3.7 D.3.3.3); peers that do not grant it get one at a time. "
            "1: do not propose it.",
            min=1,
            max=256,
        ),
    ] = 256,  # services.store_scu.DEFAULT_WINDOW (not imported: start-up; a test checks)
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
    json_output: Annotated[
        bool,
        typer.Option("--json", help="One JSON object per file on stdout, then a summary object."),
    ] = False,
    verbose: VerboseOption = False,
    no_progress: NoProgressOption = False,
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """Send DICOM files to a peer (C-STORE)."""
    from netdicom.services.peer import BadPeer

    paths = list(paths or [])
    peer_text: str | None = peer
    # A configured peer's name is the peer even where a file or folder has that name: a
    # folder named after the PACS (pacs/, archive/) sent everything to the default peer, the
    # folder walked as data (walkthrough 6d). ./NAME is the folder.
    bare = ":" not in peer and "@" not in peer
    if bare and not names_a_configured_peer(peer) and (Path(peer).exists() or has_default_peer()):
        # `netdicom store *.dcm` with a default peer: the first argument is a path, also one
        # that is missing: said as such (exit 3), not "give at least one file" or "not a
        # configured peer" (exit 2) when a cron job's file had vanished (walkthrough 7a).
        paths.insert(0, Path(peer))
        peer_text = None
        if not Path(peer).exists() and "/" not in peer and "." not in peer:
            # A word like a peer's name: a typo of one as likely as a missing file.
            _missing_or_peer(peer, quiet=quiet)
    if not paths:
        also = ""
        if bare and Path(peer).exists():
            also = f" ({quoted(peer)} names a configured peer: for the path here, write ./{peer})"
        raise typer.BadParameter(f"give at least one file or directory{also}", param_hint="PATHS")
    try:
        target = resolve_peer(peer_text)
    except BadPeer as exc:
        raise typer.BadParameter(str(exc), param_hint="PEER") from None
    from netdicom.services.planning import scan

    try:
        found = scan(paths, recursive)
    except OSError as exc:
        if json_output:
            _json_nothing_sent(str(target), (), str(exc))
        raise fail(exc, debug=debug, quiet=quiet) from None
    if not found.files and not any(s.failed for s in found.skipped):
        if json_output:
            _json_nothing_sent(str(target), found.skipped, "no DICOM instances to send")
        if not quiet:
            for skipped in found.skipped:
                stderr(f"netdicom: skipped {skipped.path}: {skipped.reason}")
            stderr("netdicom: error: no DICOM instances to send")
        raise typer.Exit(3)  # ExitCode.BAD_INPUT
    security = ClientSecurity(
        tls, tls_cert, tls_key, tls_ca, tls_no_hostname_check, username, password
    )
    options = client_options(
        aet, aec, timeout, max_pdu, security, peer_text=peer_text, quiet=quiet, debug=debug
    )
    report = run(
        _store(
            target,
            found,
            options,
            associations,
            timeout,
            json_output,
            verbose,
            quiet,
            no_progress=no_progress,
            window=window,
        ),
        debug=debug,
        quiet=quiet,
    )
    if report.refused and not quiet:
        stderr(_refusal_note(report))
    raise typer.Exit(_exit_code(report, debug=debug, quiet=quiet or json_output))


def _missing_or_peer(word: str, *, quiet: bool) -> None:
    """Exit 3 for a first argument that is neither a file nor a configured peer, naming the
    peers: "no such file" alone misled whoever mistyped a peer's name (walkthrough 7
    verification)."""
    from netdicom.cli.exit_codes import ExitCode
    from netdicom.config import ConfigError, load_config

    try:
        config = load_config()
    except ConfigError:
        return  # resolving the peer says what is wrong with the file
    known = ", ".join(sorted(config.peers)) or "none"
    if not quiet:
        stderr(
            f"netdicom: error: no such file or directory: {word}, nor a peer named in "
            f"{config.path} (configured: {known})"
        )
    raise typer.Exit(int(ExitCode.BAD_INPUT))


def _json_nothing_sent(peer: str, skipped: Sequence[Skipped], error: str) -> None:
    """--json when the run ends before anything could be sent (a missing path, no DICOM
    file): the skipped files and a summary whose `error` says why, as after any other run, so
    that a CI job saving the output never gets an empty file."""
    import json

    from netdicom.core.errors import NetDicomError
    from netdicom.render.store_summary import JsonLines, summary_json
    from netdicom.services.store_scu import StoreReport, skipped_outcome

    report = StoreReport(error=NetDicomError(error))
    lines = JsonLines()
    for item in skipped:
        outcome = skipped_outcome(item)
        report.outcomes.append(outcome)
        lines.finished(outcome)
    print(json.dumps(summary_json(report, peer)))


def _refusal_note(report: StoreReport) -> str:
    """One line on the extra associations the peer refused while the others carried the
    files: not an error (nothing was lost), but -j asked for more than the peer serves."""
    refused = len(report.refused)
    asked = refused + report.associations
    return (
        f"netdicom: note: the peer refused {refused} of {asked} associations "
        f"({report.refused[0]}): it serves fewer at once than -j asked for; the files went "
        f"over the other {report.associations}"
    )


def _exit_code(report: StoreReport, *, debug: bool, quiet: bool) -> int:
    from netdicom.cli.exit_codes import ExitCode

    if report.all_stored:
        if report.error is not None and not quiet:
            # Every file was answered before it (a release the peer aborted or ignored):
            # nothing was lost, but the peer misbehaved and the user should hear of it.
            from netdicom.cli.common import stderr
            from netdicom.cli.exit_codes import classify

            stderr(f"netdicom: warning: every file was stored, then: {classify(report.error)[1]}")
        return int(ExitCode.OK)
    if report.error is not None:
        # Files were lost to an association-level failure: its code says what went wrong.
        return fail(report.error, debug=debug, quiet=quiet).exit_code
    return int(ExitCode.FAILED)


class _Fanout:
    def __init__(self, *observers: Any) -> None:
        self._observers = observers

    def opened(self, assoc: Association) -> None:
        for observer in self._observers:
            observer.opened(assoc)

    def sent_bytes(self, count: int) -> None:
        for observer in self._observers:
            observer.sent_bytes(count)

    def finished(self, outcome: FileOutcome) -> None:
        for observer in self._observers:
            observer.finished(outcome)


async def _store(
    target: object,
    found: object,
    options: ClientOptions,
    associations: int,
    timeout: float,
    json_output: bool,
    verbose: bool,
    quiet: bool,
    *,
    no_progress: bool = False,
    window: int,
) -> StoreReport:
    import asyncio
    import os
    import sys
    import time

    from netdicom.render.progress import StoreProgress
    from netdicom.render.store_summary import JsonLines, print_summary, summary_json
    from netdicom.services.peer import Peer
    from netdicom.services.planning import Scan
    from netdicom.services.store_scu import store

    assert isinstance(target, Peer) and isinstance(found, Scan)
    show_bar = (
        not (quiet or no_progress)
        and sys.stderr.isatty()
        and os.environ.get("TERM") != "dumb"
        and "NO_COLOR" not in os.environ
    )
    progress = StoreProgress(len(found.files), found.total_bytes, enabled=show_bar)
    seen = _Seen()
    observers: list[Any] = [progress, seen]
    if json_output:
        observers.append(JsonLines())
    if verbose and not quiet:
        observers.append(_Negotiation())
    started = time.perf_counter()
    cancelled = False
    with progress:
        try:
            report = await store(
                target,
                options,
                found,
                associations=associations,
                timeout=timeout,
                observer=_Fanout(*observers),
                window=window,
            )
        except asyncio.CancelledError:
            # Ctrl-C (common.run): the associations are aborted by now. The summary of what
            # was done still comes, then exit 130.
            cancelled = True
            report = seen.report(found.files, interrupted_text())
            # The files not sent get their line too, as after any other early end.
            for outcome in report.outcomes[len(seen.outcomes) :]:
                for observer in (o for o in observers if o is not seen):
                    observer.finished(outcome)
            report.elapsed = time.perf_counter() - started
    if json_output:
        import json

        print(json.dumps(summary_json(report, str(target))))
    elif not quiet:
        print_summary(report, str(target))
    if cancelled:
        raise asyncio.CancelledError
    return report


class _Seen:
    """Every file's outcome as it is known: what a Ctrl-C leaves of the report."""

    def __init__(self) -> None:
        self.outcomes: list[FileOutcome] = []
        self.associations = 0

    def opened(self, assoc: Association) -> None:
        self.associations += 1

    def sent_bytes(self, count: int) -> None:
        pass

    def finished(self, outcome: FileOutcome) -> None:
        self.outcomes.append(outcome)

    def report(self, files: Sequence[Any], error: str) -> StoreReport:
        """The outcomes so far, and the files still without one as failed, not sent."""
        from netdicom.core.errors import NetDicomError
        from netdicom.services.store_scu import StoreReport, failed_outcome

        report = StoreReport(error=NetDicomError(error))
        report.outcomes.extend(self.outcomes)
        report.associations = self.associations
        done = {o.path for o in self.outcomes}
        reason = f"not sent: {error}"
        report.outcomes += [failed_outcome(i, reason) for i in files if i.path not in done]
        return report


class _Negotiation:
    """-v: the negotiation of each association (proposed vs accepted contexts)."""

    def opened(self, assoc: Association) -> None:
        from netdicom.render.negotiation import print_negotiation

        print_negotiation(assoc)

    def sent_bytes(self, count: int) -> None:
        pass

    def finished(self, outcome: FileOutcome) -> None:
        pass
