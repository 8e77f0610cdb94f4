"""Association negotiation as pure functions (PS3.7 Annex D.3, PS3.8 §9.3).

Requestor: `build_associate_rq` then `negotiate_requestor` on the peer's A-ASSOCIATE-AC.
Acceptor: `negotiate_acceptor` under an `AcceptorPolicy`. Both give a `Negotiated`.
"""

from __future__ import annotations

from netdicom.core.acse.acceptor import (
    DEFAULT_MAX_PDU,
    AcceptorPolicy,
    ExtendedNegotiator,
    IdentityChecker,
    SopClassSet,
    TransferSyntaxChooser,
    default_chooser,
    negotiate_acceptor,
)
from netdicom.core.acse.model import (
    AcceptedContext,
    AllContextsRejected,
    Negotiated,
    ProposedContext,
    RejectedContext,
    reason_text,
    syntax_name,
)
from netdicom.core.acse.requestor import (
    MAX_CONTEXTS,
    build_associate_rq,
    negotiate_requestor,
    requestor_window,
)

__all__ = [
    "DEFAULT_MAX_PDU",
    "MAX_CONTEXTS",
    "AcceptedContext",
    "AcceptorPolicy",
    "AllContextsRejected",
    "ExtendedNegotiator",
    "IdentityChecker",
    "Negotiated",
    "ProposedContext",
    "RejectedContext",
    "SopClassSet",
    "TransferSyntaxChooser",
    "build_associate_rq",
    "default_chooser",
    "negotiate_acceptor",
    "negotiate_requestor",
    "reason_text",
    "requestor_window",
    "syntax_name",
]
