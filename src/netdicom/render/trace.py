"""`--debug`: a PDU-level trace on stderr, one line per PDU sent or received."""

from __future__ import annotations

import sys
import time

from netdicom.core.pdu import (
    AbortPDU,
    AssociateAC,
    AssociateRJ,
    AssociateRQ,
    PDataTF,
    ReleaseRP,
    ReleaseRQ,
)
from netdicom.core.printable import printable

_START = time.monotonic()


def describe(item: object) -> str:
    """One line for a PDU (or the transport's own description of a P-DATA-TF it sent)."""
    if isinstance(item, str):
        return item
    if isinstance(item, AssociateRQ):
        contexts = ", ".join(
            f"{c.context_id}:{c.abstract_syntax}[{len(c.transfer_syntaxes)} TS]"
            for c in item.presentation_contexts
        )
        return (
            f"A-ASSOCIATE-RQ {item.calling_ae_title} -> {item.called_ae_title}, max PDU "
            f"{item.user_information.max_length}, contexts {contexts}"
        )
    if isinstance(item, AssociateAC):
        results = ", ".join(
            f"{c.context_id}:{c.result.name.lower()}" for c in item.presentation_contexts
        )
        return f"A-ASSOCIATE-AC max PDU {item.user_information.max_length}, contexts {results}"
    if isinstance(item, AssociateRJ):
        return f"A-ASSOCIATE-RJ result {item.result}, source {item.source}, reason {item.reason}"
    if isinstance(item, PDataTF):
        pdvs = "; ".join(
            f"context {p.context_id}, {'command' if p.is_command else 'data set'}"
            f"{' (last)' if p.is_last else ''}, {len(p.data)} bytes"
            for p in item.pdvs
        )
        return f"P-DATA-TF {pdvs}"
    if isinstance(item, ReleaseRQ):
        return "A-RELEASE-RQ"
    if isinstance(item, ReleaseRP):
        return "A-RELEASE-RP"
    if isinstance(item, AbortPDU):
        return f"A-ABORT source {item.source}, reason {item.reason}"
    return repr(item)


def pdu_trace(direction: str, item: object) -> None:
    """The TransportConfig.trace callback of `--debug`."""
    arrow = "->" if direction == "send" else "<-"
    # AE titles and UIDs of a received A-ASSOCIATE-RQ are the peer's: one escaped line.
    line = printable(describe(item))
    sys.stderr.write(f"[{time.monotonic() - _START:9.4f}] {arrow} {line}\n")
