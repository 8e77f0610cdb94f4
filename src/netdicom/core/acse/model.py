"""The outcome of association negotiation, the same shape on both sides of the association."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import field
from typing import Literal

from netdicom.core.errors import NoAcceptedContext
from netdicom.core.pdu.types import AsyncOpsWindow, ContextResult
from netdicom.core.records import frozen

_REASON_WORDS: Mapping[ContextResult, str] = {
    ContextResult.ACCEPTANCE: "accepted",
    ContextResult.USER_REJECTION: "rejected by the user (no reason given)",
    ContextResult.NO_REASON: "rejected by the provider (no reason given)",
    ContextResult.ABSTRACT_SYNTAX_NOT_SUPPORTED: "abstract syntax not supported",
    ContextResult.TRANSFER_SYNTAXES_NOT_SUPPORTED: "no proposed transfer syntax supported",
}


def reason_text(result: ContextResult) -> str:
    """The result of a presentation context in words (PS3.8 Table 9-18)."""
    return _REASON_WORDS[result]


def syntax_name(uid: str) -> str:
    """`CT Image Storage (1.2.840.10008.5.1.4.1.1.2)`, or the bare UID when pydicom lacks it."""
    # Imported here: pydicom costs ~250 ms to import and `netdicom echo` must start fast.
    from pydicom.uid import UID

    name = str(UID(uid).name)
    return uid if name == uid else f"{name} ({uid})"


@frozen
class ProposedContext:
    """One presentation context to propose: an abstract syntax and its transfer syntaxes."""

    abstract_syntax: str
    transfer_syntaxes: tuple[str, ...]


@frozen
class AcceptedContext:
    """A presentation context accepted for the association, with the roles WE may play.

    `we_are_scu`: we may send requests of this SOP class on this context;
    `we_are_scp`: we may receive and answer them (PS3.7 D.3.3.4).
    """

    context_id: int
    abstract_syntax: str
    transfer_syntax: str
    we_are_scu: bool
    we_are_scp: bool


@frozen
class RejectedContext:
    """A proposed presentation context that was not accepted, and why."""

    context_id: int
    abstract_syntax: str
    reason: ContextResult

    def describe(self) -> str:
        """`context 3, CT Image Storage (1.2...): abstract syntax not supported`."""
        return (
            f"context {self.context_id}, {syntax_name(self.abstract_syntax)}: "
            f"{reason_text(self.reason)}"
        )


_NAMED_REJECTIONS = 3


class AllContextsRejected(NoAcceptedContext):
    """NoAcceptedContext that carries the rejected contexts (`rejected`) for callers to inspect."""

    def __init__(self, rejected: Sequence[RejectedContext], called_ae: str = "") -> None:
        self.rejected = tuple(rejected)
        peer = f" by {called_ae}" if called_ae else ""
        # The first few by name (the service's own context comes first), the rest counted by
        # reason: 128 contexts written out made a 15 KB line (-v shows every one).
        shown = self.rejected[:_NAMED_REJECTIONS]
        details = "; ".join(item.describe() for item in shown) or "no context answered"
        rest = Counter(reason_text(item.reason) for item in self.rejected[_NAMED_REJECTIONS:])
        if rest:
            counts = ", ".join(f"{count} {reason}" for reason, count in rest.most_common())
            details += f"; and {sum(rest.values())} more ({counts}; -v lists them)"
        super().__init__(
            f"association accepted{peer} but no presentation context was: {details}. "
            "Check that the peer supports these SOP classes and transfer syntaxes."
        )


@frozen
class Negotiated:
    """What an association may carry, seen from our side (requestor or acceptor).

    - `max_pdu_to_peer`: the peer's Maximum Length, the largest P-DATA-TF we may send;
      0 means the peer set no limit (PS3.8 Annex D.1).
    - `max_pdu_from_peer`: our own Maximum Length, the largest P-DATA-TF the peer may send us.
    - `async_window`: the Asynchronous Operations Window of the A-ASSOCIATE-AC: how many
      operations the requestor may invoke / perform outstanding (both stated for the
      requestor, PS3.7 D.3.3.3), None when it was not negotiated: both sides then work
      synchronously, one outstanding operation each way.
    - `user_identity_response`: the server response of the User Identity sub-item 0x59 of the
      A-ASSOCIATE-AC, None when there was none (PS3.7 D.3.3.7.2).
    - `extended_negotiation`: SOP class UID -> service-class application information as
      answered by the acceptor (sub-item 0x56, PS3.7 D.3.3.5).
    - `calling_ae`, `called_ae`: the titles of the A-ASSOCIATE-RQ, trimmed.
    """

    accepted: Mapping[int, AcceptedContext]
    rejected: tuple[RejectedContext, ...]
    max_pdu_to_peer: int
    max_pdu_from_peer: int
    peer_implementation_class_uid: str
    peer_implementation_version_name: str | None
    calling_ae: str
    called_ae: str
    is_requestor: bool
    async_window: AsyncOpsWindow | None = None
    user_identity_response: bytes | None = None
    extended_negotiation: Mapping[str, bytes] = field(default_factory=dict)

    def contexts_for(self, abstract_syntax: str) -> tuple[AcceptedContext, ...]:
        """Every accepted context of this abstract syntax, in context ID order."""
        return tuple(
            self.accepted[cid]
            for cid in sorted(self.accepted)
            if self.accepted[cid].abstract_syntax == abstract_syntax
        )

    def context_for(
        self,
        abstract_syntax: str,
        transfer_syntax: str | None = None,
        *,
        role: Literal["scu", "scp"] = "scu",
    ) -> AcceptedContext | None:
        """The first accepted context of this abstract syntax (and transfer syntax, when given)
        on which we may play `role`, or None."""
        for context in self.contexts_for(abstract_syntax):
            if transfer_syntax is not None and context.transfer_syntax != transfer_syntax:
                continue
            if context.we_are_scu if role == "scu" else context.we_are_scp:
                return context
        return None
