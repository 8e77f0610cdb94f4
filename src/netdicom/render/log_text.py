"""`serve`'s log lines on stderr: "YYYY-MM-DD HH:MM:SS message", local time.

A busy store logs a line per instance, thousands a second: the stock formatter converts and
formats the time afresh for each (time.localtime + strftime), this one once per second.
"""

from __future__ import annotations

import logging

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(message)s", TIME_FORMAT)
        self._second = -1
        self._stamp = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        # Called under the handler's lock: no two threads update the cache at once.
        second = int(record.created)
        if second != self._second:
            self._stamp = super().formatTime(record, datefmt)
            self._second = second
        return self._stamp
