"""The outcome of `netdicom store`: a summary in words, or JSON (one object per file, then one
summary object), on stdout."""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

from netdicom.core.printable import printable
from netdicom.services.store_scu import FileOutcome, Result, StoreReport
from netdicom.transport.association import Association


def outcome_json(outcome: FileOutcome) -> dict[str, Any]:
    return {
        "file": str(outcome.path),
        "result": outcome.result.value,
        "sop_class_uid": outcome.sop_class_uid,
        "sop_instance_uid": outcome.sop_instance_uid,
        "status": outcome.status,
        "status_hex": f"0x{outcome.status:04X}" if outcome.status is not None else None,
        "status_name": outcome.status_name,
        "reason": outcome.reason,
        "transfer_syntax": outcome.transfer_syntax,
        "converted": outcome.converted,
        "bytes": outcome.bytes,
    }


class JsonLines:
    """Observer writing one JSON object per finished file, as soon as it is known."""

    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out or sys.stdout

    def opened(self, assoc: Association) -> None:
        pass

    def sent_bytes(self, count: int) -> None:
        pass

    def finished(self, outcome: FileOutcome) -> None:
        self._out.write(json.dumps(outcome_json(outcome)) + "\n")


def summary_json(report: StoreReport, peer: str) -> dict[str, Any]:
    elapsed = report.elapsed
    sent = report.bytes_sent
    return {
        "summary": {
            "peer": peer,
            "files": len(report.outcomes),
            "stored": report.count(Result.STORED),
            "warnings": report.count(Result.WARNING),
            "failed": report.count(Result.FAILED),
            "skipped": report.count(Result.SKIPPED),
            "bytes": sent,
            "elapsed_s": round(elapsed, 6),
            "mb_per_s": round(sent / 1e6 / elapsed, 3) if elapsed > 0 else None,
            "files_per_s": (
                round((report.count(Result.STORED) + report.count(Result.WARNING)) / elapsed, 1)
                if elapsed > 0
                else None
            ),
            "associations": report.associations,
            "error": str(report.error) if report.error else None,
        }
    }


def _status(outcome: FileOutcome) -> str:
    if outcome.status is None:
        return ""
    return f"0x{outcome.status:04X} {outcome.status_name}"


def print_summary(report: StoreReport, peer: str, *, out: TextIO | None = None) -> None:
    """Counts, throughput, then every failed, warned and skipped file with its reason."""
    stream = out or sys.stdout

    def line(text: str) -> None:
        # A reason may quote the peer's Error Comment (and a file name may hold anything):
        # one escaped line each, so neither can forge lines nor steer the terminal.
        stream.write(printable(text) + "\n")

    stored = report.count(Result.STORED)
    warnings = report.count(Result.WARNING)
    failed = report.count(Result.FAILED)
    skipped = report.count(Result.SKIPPED)
    elapsed = report.elapsed
    mb = report.bytes_sent / 1e6
    rate = (
        f"{mb / elapsed:.1f} MB/s, {(stored + warnings) / elapsed:.0f} files/s"
        if elapsed > 0
        else ""
    )
    line(
        f"Stored {stored + warnings} of {stored + warnings + failed} instances on {peer} "
        f"({warnings} with warnings), {failed} failed, {skipped} skipped; "
        f"{mb:.1f} MB in {elapsed:.2f} s ({rate})"
    )
    for result, title in ((Result.FAILED, "Failed"), (Result.WARNING, "Warnings")):
        rows = [o for o in report.outcomes if o.result is result]
        if rows:
            line(f"{title}:")
            for o in rows:
                details = "; ".join(
                    part for part in (o.sop_instance_uid or "", _status(o), o.reason or "") if part
                )
                line(f"  {o.path}: {details}")
    rows = [o for o in report.outcomes if o.result is Result.SKIPPED]
    if rows:
        line("Skipped:")
        for o in rows:
            line(f"  {o.path}: {o.reason}")
