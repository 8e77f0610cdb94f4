"""`serve --log-json`: one JSON object per line on stderr for every log record.

Events (netdicom.services.events) keep their own fields; any other record becomes
{"event": "log", "level": ..., "message": ...}. Every object has "time" (ISO 8601, UTC).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "netdicom_event", None)
        when = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        if isinstance(fields, dict):
            payload: dict[str, object] = {"time": when, **fields}
        else:
            payload = {
                "time": when,
                "event": "log",
                "level": record.levelname.lower(),
                "logger": record.name,
                "message": record.getMessage(),
            }
        if record.exc_info:
            from netdicom.render.log_text import exception_text

            payload["error"] = exception_text(record.exc_info)  # the cause, not a traceback
        # ASCII (\u escapes): one valid JSON line whatever the locale's encoding.
        return json.dumps(payload, default=str)
