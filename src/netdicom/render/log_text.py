"""`serve`'s log lines on stderr: "YYYY-MM-DD HH:MM:SS+HHMM message", local time with its
offset from UTC (logs from machines in other time zones, or across a clock change, compare).

A busy store logs a line per instance, thousands a second: the stock formatter converts and
formats the time afresh for each (time.localtime + strftime), this one once per second.

The messages quote what peers sent (calling AE titles, patient IDs, UIDs, Error Comments):
each is escaped with `printable`, so that a peer can neither forge log lines with a newline
nor send escape sequences to the terminal or to whoever reads the log later.
"""

from __future__ import annotations

import logging

from netdicom.core.printable import printable

TIME_FORMAT = "%Y-%m-%d %H:%M:%S%z"


class TextFormatter(logging.Formatter):
    """`debug`: tracebacks as Python prints them; otherwise an exception is one line, its
    type and message after the record's (the README promises no traceback without --debug,
    and one incident wrote seven of 15-25 lines each into journald)."""

    def __init__(self, *, debug: bool = False) -> None:
        super().__init__("%(asctime)s %(message)s", TIME_FORMAT)
        self._second = -1
        self._stamp = ""
        self._debug = debug

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info and not self._debug:
            record = logging.makeLogRecord(record.__dict__)
            record.msg = f"{record.getMessage()}: {exception_text(record.exc_info)}"
            record.args = None
            record.exc_info = record.exc_text = None
        return super().format(record)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        # Called under the handler's lock: no two threads update the cache at once.
        second = int(record.created)
        if second != self._second:
            self._stamp = super().formatTime(record, datefmt)
            self._second = second
        return self._stamp

    def formatMessage(self, record: logging.LogRecord) -> str:
        # The message only: a traceback (exc_info, with --debug) is appended after this and
        # keeps its lines. Warnings and errors say so, for grep and for the eye.
        if record.levelno >= logging.WARNING:
            return f"{record.asctime} {record.levelname.lower()}: {printable(record.message)}"
        return f"{record.asctime} {printable(record.message)}"


def exception_text(exc_info: object) -> str:
    """`OperationalError: database or disk is full` from a record's exc_info."""
    if isinstance(exc_info, tuple) and len(exc_info) == 3 and exc_info[1] is not None:
        exc = exc_info[1]
        return f"{type(exc).__name__}: {exc}"
    return "unknown error"


class CommandFormatter(logging.Formatter):
    """The clients' log lines: `netdicom: warning: ...`, or with --debug `module: ...`; the
    message escaped as in TextFormatter (a warning may quote what the peer sent)."""

    def __init__(self, *, debug: bool) -> None:
        super().__init__()
        self._debug = debug

    def formatMessage(self, record: logging.LogRecord) -> str:
        message = printable(record.message)
        if self._debug:
            return f"{record.name}: {message}"
        return f"netdicom: {record.levelname.lower()}: {message}"
