"""Serve's events: one log record per association, stored instance, query and retrieve.

Each event is an ordinary log record on the `netdicom.events` logger (a readable message for
people) that also carries its fields under `record.netdicom_event`, so `serve --log-json` can
write one JSON object per event without parsing messages. Field names are documented in the
README and stable.
"""

from __future__ import annotations

import logging

log = logging.getLogger("netdicom.events")


def emit(event: str, message: str, /, **fields: object) -> None:
    """Log `message` at INFO, with `event` and `fields` attached for machine output."""
    if log.isEnabledFor(logging.INFO):
        log.info(message, extra={"netdicom_event": {"event": event, **fields}})
