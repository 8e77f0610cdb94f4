"""`netdicom get` / `netdicom move` output: a progress bar on stderr fed by the pending
responses (remaining, completed, failed, warning), and the summary with the failed SOP
Instance UIDs, and what the final responses claim that cannot be true. Plain lines when stderr
is not a terminal or NO_COLOR is set; `--json` gives one summary object on stdout, also when
the command ends in an error."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from netdicom.core.dimse import StatusCategory, category, status_name
from netdicom.core.printable import printable
from netdicom.services.retrieve_common import (
    CountProblem,
    Kind,
    Progress,
    Received,
    RetrieveOutcome,
    check_counts,
)


def _stderr(text: str) -> None:
    # Error Comments and UIDs are the peer's: escaped (render.printable).
    sys.stderr.write(printable(text) + "\n")


def bar_enabled(quiet: bool) -> bool:
    return (
        not quiet
        and sys.stderr.isatty()
        and os.environ.get("TERM") != "dumb"
        and "NO_COLOR" not in os.environ
    )


class RetrieveProgress:
    """A Rich bar: completed+failed+warning out of the total the peer announces."""

    def __init__(self, what: str, *, enabled: bool, expected: int | None = None) -> None:
        self._progress: Any = None
        self._task: Any = None
        self._received = 0
        if enabled:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn(f"[bold]{what}"),
                BarColumn(),
                TextColumn("{task.fields[counts]}"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._task = self._progress.add_task(what, total=expected, counts="")

    def __enter__(self) -> RetrieveProgress:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()

    def update(self, progress: Progress) -> None:
        if self._progress is None:
            return
        done = sum(v or 0 for v in (progress.completed, progress.failed, progress.warning))
        total = done + (progress.remaining or 0)
        counts = (
            f"{progress.completed or 0} done, {progress.failed or 0} failed, "
            f"{progress.warning or 0} warnings, {progress.remaining or 0} to go"
        )
        self._progress.update(self._task, completed=done, total=total or None, counts=counts)

    def received(self, item: Received) -> None:
        self._received += 1
        if self._progress is not None:
            self._progress.update(self._task, description=f"{self._received} received")


def describe(outcome: RetrieveOutcome, service: str) -> str:
    name = status_name(outcome.status, service)
    comment = f" ({outcome.error_comment})" if outcome.error_comment else ""
    return f"{name} (0x{outcome.status:04X}){comment}"


def print_summary(
    service: str,
    outcomes: Sequence[RetrieveOutcome],
    received: Sequence[Received],
    *,
    out_dir: str | None,
    problems: Sequence[CountProblem] = (),
) -> None:
    """The summary on stderr: per request status, totals, failed UIDs, what is wrong with
    the counts. `out_dir` None: the instances went to another AE (C-MOVE), where we cannot
    see them, so the counts are only the peer's word."""
    completed = sum(o.final.completed or 0 for o in outcomes)
    failed = sum(o.final.failed or 0 for o in outcomes)
    warning = sum(o.final.warning or 0 for o in outcomes)
    for number, outcome in enumerate(outcomes, 1):
        prefix = f"request {number}: " if len(outcomes) > 1 else ""
        _stderr(f"{prefix}C-{service.upper()} {describe(outcome, service)}")
    stored = f"{stored_count(received)} stored in {out_dir}"
    kept = kept_existing_count(received)
    if kept:
        stored += (
            f" ({kept} already there: kept as they were, not replaced by the peer's copies; "
            "--on-duplicate overwrite replaces them)"
        )
    counted = any(
        v is not None
        for o in outcomes
        for v in (o.final.completed, o.final.failed, o.final.warning)
    )
    if outcomes:
        line = f"the peer reports {completed} completed, {failed} failed, {warning} warnings"
        if not counted:
            line = "the peer gave no sub-operation counts"
        if out_dir is None:
            line += " (at the move destination: not seen from here)"
        else:
            line += f"; {stored}"
        _stderr(line)
    elif out_dir is not None and received:
        _stderr(stored)  # the association failed before any final response
    for line in failed_lines(service, outcomes, received):
        _stderr(f"  failed: {line}")
    for problem in problems:
        _stderr(f"netdicom: {'error' if problem.fails else 'warning'}: {problem.text}")
    refused = [o for o in outcomes if category(o.status) is StatusCategory.FAILURE]
    for outcome in refused[:1]:
        # As find and echo end a failure: one error line that says it (exit 1).
        _stderr(f"netdicom: error: C-{service.upper()} failed: {describe(outcome, service)}")


def _json_mode_alarm(
    service: str, outcomes: Sequence[RetrieveOutcome], problems: Sequence[CountProblem]
) -> None:
    """With --json, one stderr line when something failed, as the other commands give: a
    nightly job's log (stderr) showed only "C-FIND: 5 studies match" for a failed retrieve,
    the failure being in the JSON alone (walkthrough 6d)."""
    failed = sum(o.final.failed or 0 for o in outcomes)
    worst = [o for o in outcomes if category(o.status) is StatusCategory.FAILURE]
    if worst:
        _stderr(f"netdicom: error: C-{service.upper()} failed: {describe(worst[0], service)}")
    elif failed:
        _stderr(f"netdicom: error: {failed} sub-operation(s) failed (listed in the JSON)")
    elif any(problem.fails for problem in problems):
        _stderr("netdicom: error: the peer's counts do not add up (see problems in the JSON)")


def stored_count(received: Sequence[Received]) -> int:
    """Instances stored here: one per SOP Instance UID, however often the peer sent it."""
    return len({r.sop_instance_uid for r in received if r.ok})


def kept_existing_count(received: Sequence[Received]) -> int:
    """Instances answered as stored whose file already in the folder was kept instead."""
    return len({r.sop_instance_uid for r in received if r.ok and r.kept_existing})


def repeated(received: Sequence[Received]) -> list[CountProblem]:
    """A note per instance the peer sent more than once (counted once in `stored`)."""
    from collections import Counter

    times = Counter(r.sop_instance_uid for r in received if r.ok)
    return [
        CountProblem(
            f"the peer sent {uid} {count} times: counted once; a copy was written again only "
            "where its attributes gave it a path of its own",
            fails=False,
        )
        for uid, count in times.items()
        if count > 1
    ]


def failed_lines(
    service: str, outcomes: Sequence[RetrieveOutcome], received: Sequence[Received]
) -> list[str]:
    """One line per failed SOP Instance UID, with why when we know: our own status for those
    we refused, else the peer's reason for its request (its Error Comment, or the name of a
    Failure status, which PS3.4 C.4.3.3.1 gives when every sub-operation failed)."""
    lines: dict[str, str] = {}
    for outcome in outcomes:
        reason = _peer_reason(outcome, service)
        for number, uid in enumerate(outcome.failed_uids):
            # The peer gives one reason for the request: said with the first UID, not again
            # with each (250 identical lines when a move destination was unreachable).
            said = reason if number == 0 else "the same" if reason else None
            lines.setdefault(uid, f"{uid} ({said})" if said else uid)
    for r in received:
        if r.status is None:
            lines[r.sop_instance_uid] = f"{r.sop_instance_uid[:64]} ({r.error_comment})"
        elif not r.ok:
            comment = f": {r.error_comment}" if r.error_comment else ""
            lines[r.sop_instance_uid] = (
                f"{r.sop_instance_uid[:64]} (refused here: "
                f"{status_name(r.status, 'store')} (0x{r.status:04X}){comment})"
            )
    return list(lines.values())


def _peer_reason(outcome: RetrieveOutcome, service: str) -> str | None:
    if outcome.error_comment:
        return f"the peer: {outcome.error_comment}"
    if category(outcome.status) is StatusCategory.FAILURE:
        return f"the peer: {status_name(outcome.status, service)} (0x{outcome.status:04X})"
    return None


def report(
    service: Kind,
    outcomes: Sequence[RetrieveOutcome],
    received: Sequence[Received],
    *,
    out_dir: str | None,
    json_output: bool,
    quiet: bool,
    error: str | None,
    more: Sequence[CountProblem] = (),
) -> list[CountProblem]:
    """The end of a get or move: the final responses' counts checked against what arrived
    (`out_dir` None: the instances went to another AE, where we cannot see them), then the
    summary, as JSON on stdout or as text on stderr. `error`: what ended the command early.
    Returns what is wrong with the counts (it decides the exit code too)."""
    # Sub-operations we answered with success (a repeated instance counts each time, as the
    # peer counts it), against the peer's counts; `stored` says how many instances that was.
    arrived = None if out_dir is None else sum(1 for r in received if r.ok)
    problems = check_counts(service, outcomes, arrived) + repeated(received) + list(more)
    if json_output:
        checked = out_dir is not None
        print(summary_json(service, outcomes, received, checked=checked, problems=problems,
                           error=error))  # fmt: skip
        if not quiet:
            _json_mode_alarm(service, outcomes, problems)
    elif not quiet:
        print_summary(service, outcomes, received, out_dir=out_dir, problems=problems)
    return problems


def summary_json(
    service: str,
    outcomes: Sequence[RetrieveOutcome],
    received: Sequence[Received],
    *,
    checked: bool = True,
    problems: Sequence[CountProblem] = (),
    error: str | None = None,
) -> str:
    """The --json summary; `checked` False: the instances went to another AE (C-MOVE), so
    "stored" is null. `error`: what ended the command early (its exit code says the kind)."""
    return json.dumps(
        {
            "service": service,
            "requests": [
                {
                    "status": o.status,
                    "status_name": status_name(o.status, service),
                    "completed": o.final.completed,
                    "failed": o.final.failed,
                    "warning": o.final.warning,
                    "failed_sop_instance_uids": o.failed_uids,
                    "error_comment": o.error_comment,
                    "cancelled": o.cancelled,
                }
                for o in outcomes
            ],
            "received": [
                {
                    "sop_class_uid": r.sop_class_uid,
                    "sop_instance_uid": r.sop_instance_uid,
                    "status": r.status,
                    "error_comment": r.error_comment,
                    "kept_existing": r.kept_existing,
                }
                for r in received
            ],
            "stored": stored_count(received) if checked else None,
            "kept_existing": kept_existing_count(received) if checked else None,
            "problems": [p.text for p in problems],
            "error": error,
        }
    )
