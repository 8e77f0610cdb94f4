"""The `netdicom` command's entry point: the first code of ours that runs.

It imports the CLI (most of a start-up's time) under a guard: Ctrl-C in those first
milliseconds exits with 130, as it does later, instead of printing Python's traceback.

The cyclic garbage collector is off while modules load (their objects live as long as the
process: collecting them is wasted work, ~7 ms of a ~110 ms start-up here); `cli.common.run`
turns it back on, after moving everything loaded so far out of its reach (gc.freeze).

The standard streams are set up first, before anything can write: standard error never fails
a command (LossyStderr), standard output closed from the start says so (ClosedStdout), and a
character the locale's encoding cannot hold is written escaped.
"""

from __future__ import annotations

import gc
import io
import sys
import warnings
from typing import Any

_INTERRUPTED = 130  # netdicom.cli.exit_codes.ExitCode.INTERRUPTED (not imported: it is the CLI)


class LossyStderr(io.TextIOBase):
    """Standard error that never fails a command. Diagnostics written once their reader is
    gone (`2>&1 | grep -q ...`, `2>&1 | head -1`) or to a descriptor closed before we started
    (`2>&-`, where Python leaves sys.stderr None) are dropped: a `get` that had stored every
    instance exited 1, and with stderr closed every command died on its first progress line
    with an "internal error" (walkthrough 7a). Results on stdout keep their own rule
    (exit 141 once standard output is closed)."""

    def __init__(self, stream: Any) -> None:
        super().__init__()
        self._stream = stream
        self.lost = stream is None

    def write(self, text: str) -> int:
        if not self.lost:
            try:
                self._stream.write(text)
            except (OSError, ValueError):
                self.lost = True
        return len(text)

    def flush(self) -> None:
        if not self.lost:
            try:
                self._stream.flush()
            except (OSError, ValueError):
                self.lost = True

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return not self.lost and bool(self._stream.isatty())

    def fileno(self) -> int:
        if self._stream is None:
            raise io.UnsupportedOperation("standard error is closed")
        return int(self._stream.fileno())

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return str(getattr(self._stream, "encoding", None) or "utf-8")


class ClosedStdout(io.TextIOBase):
    """Standard output closed before we started (`>&-`): a result written there is lost, as
    after `| head`, and said so (exit 141); Python's None made `print` drop it and exit 0,
    and the CSV writer fail with an internal error (walkthrough 7a)."""

    closed_at_start = True

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "standard output is closed")

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False


def main() -> None:
    gc.disable()
    for stream in (sys.stdout, sys.stderr):
        # A character the locale's encoding cannot hold (a Japanese name under an ISO 8859
        # locale) is written escaped: it stopped the query with an internal error.
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
    sys.stderr = LossyStderr(sys.stderr)
    if sys.stdout is None:
        sys.stdout = ClosedStdout()
    # pydicom warns (UserWarning, with its own file paths) about values it finds invalid: in a
    # peer's data sets, in a query's matching syntax. What matters of those we check and
    # report in our own words; on a command's stderr the rest is noise a peer can cause at
    # will. (Its logger still gets them: --debug shows them.)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"pydicom(\.|$)")
    try:
        from netdicom.cli.app import main as run
    except KeyboardInterrupt:
        sys.stderr.write("netdicom: error: interrupted\n")
        sys.exit(_INTERRUPTED)
    run()
