"""The association requestor: build the A-ASSOCIATE-RQ, read the A-ASSOCIATE-AC."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from netdicom.core import uids
from netdicom.core.acse.model import (
    AcceptedContext,
    AllContextsRejected,
    Negotiated,
    ProposedContext,
    RejectedContext,
)
from netdicom.core.acse.validation import (
    check_max_pdu,
    check_uid,
    check_version_name,
    clean_ae_title,
    clean_uid,
    peer_max_pdu_problem,
)
from netdicom.core.errors import AbortReason, LocalProtocolError, RemoteProtocolError
from netdicom.core.pdu.types import (
    AssociateAC,
    AssociateRQ,
    AsyncOpsWindow,
    ContextResult,
    PresentationContextAC,
    PresentationContextRQ,
    RoleSelection,
    SOPClassCommonExtendedNegotiation,
    SOPClassExtendedNegotiation,
    UserIdentityRQ,
    UserInformation,
)

# PS3.8 §9.3.2.2: presentation context IDs are odd integers 1..255, so 128 of them at most.
MAX_CONTEXTS = 128


def build_associate_rq(
    *,
    calling_ae: str,
    called_ae: str,
    contexts: Sequence[ProposedContext],
    max_pdu: int,
    roles: Mapping[str, tuple[bool, bool]] | None = None,
    async_window: AsyncOpsWindow | None = None,
    user_identity: UserIdentityRQ | None = None,
    extended: Sequence[SOPClassExtendedNegotiation] = (),
    common_extended: Sequence[SOPClassCommonExtendedNegotiation] = (),
    implementation_class_uid: str = uids.IMPLEMENTATION_CLASS_UID,
    implementation_version_name: str | None = uids.IMPLEMENTATION_VERSION_NAME,
) -> AssociateRQ:
    """Build an A-ASSOCIATE-RQ proposing `contexts` with IDs 1, 3, 5, ... in the given order.

    `roles` maps a SOP class UID to the (scu, scp) roles we propose for it; one SCP/SCU Role
    Selection item is sent per entry (PS3.7 D.3.3.4). `max_pdu` is the largest P-DATA-TF we
    accept, 0 for no limit. Raises LocalProtocolError on any value the standard does not allow,
    including more than 128 contexts (split them over several associations).
    """
    calling = clean_ae_title(calling_ae, "calling")
    called = clean_ae_title(called_ae, "called")
    check_max_pdu(max_pdu)
    check_uid(implementation_class_uid, "implementation class UID")
    check_version_name(implementation_version_name)

    if not contexts:
        # PS3.8 §9.3.2: the RQ holds one or more presentation context items.
        raise LocalProtocolError("at least one presentation context must be proposed")
    if len(contexts) > MAX_CONTEXTS:
        raise LocalProtocolError(
            f"{len(contexts)} presentation contexts proposed but an association carries at most "
            f"{MAX_CONTEXTS} (odd IDs 1..255, PS3.8 §9.3.2.2): split them over several "
            "associations"
        )
    items: list[PresentationContextRQ] = []
    for index, context in enumerate(contexts):
        check_uid(context.abstract_syntax, "abstract syntax")
        if not context.transfer_syntaxes:
            raise LocalProtocolError(
                f"no transfer syntax proposed for abstract syntax {context.abstract_syntax}"
            )
        for ts in context.transfer_syntaxes:
            check_uid(ts, "transfer syntax")
        items.append(
            PresentationContextRQ(
                context_id=2 * index + 1,
                abstract_syntax=context.abstract_syntax,
                transfer_syntaxes=tuple(context.transfer_syntaxes),
            )
        )

    proposed_syntaxes = {context.abstract_syntax for context in contexts}
    role_items: list[RoleSelection] = []
    for sop_class, (scu, scp) in (roles or {}).items():
        if sop_class not in proposed_syntaxes:
            raise LocalProtocolError(
                f"role selection for {sop_class}, which no proposed context carries"
            )
        if not (scu or scp):
            # PS3.7 Table D.3-9 allows (1,0), (0,1) and (1,1) only.
            raise LocalProtocolError(f"role selection for {sop_class} proposes neither role")
        role_items.append(RoleSelection(sop_class_uid=sop_class, scu_role=scu, scp_role=scp))

    _check_one_per_class([item.sop_class_uid for item in extended], "extended negotiation")
    _check_one_per_class(
        [item.sop_class_uid for item in common_extended], "common extended negotiation"
    )

    return AssociateRQ(
        called_ae_title=called,
        calling_ae_title=calling,
        presentation_contexts=tuple(items),
        user_information=UserInformation(
            max_length=max_pdu,
            implementation_class_uid=implementation_class_uid,
            implementation_version_name=implementation_version_name,
            async_ops_window=async_window,
            role_selections=tuple(role_items),
            extended_negotiations=tuple(extended),
            common_extended_negotiations=tuple(common_extended),
            user_identity_rq=user_identity,
        ),
    )


def _check_one_per_class(sop_classes: Sequence[str], what: str) -> None:
    # PS3.7 D.3.3.5/D.3.3.6: at most one such sub-item per SOP class.
    seen: set[str] = set()
    for sop_class in sop_classes:
        if sop_class in seen:
            raise LocalProtocolError(f"more than one {what} item for {sop_class}")
        seen.add(sop_class)


def negotiate_requestor(rq: AssociateRQ, ac: AssociateAC) -> Negotiated:
    """Pair the A-ASSOCIATE-AC with the RQ we sent and work out what the association carries.

    Raises RemoteProtocolError when the AC answers a context we never proposed, answers one
    twice, or accepts a transfer syntax we did not offer; AllContextsRejected (a
    NoAcceptedContext) when no context was accepted.
    """
    problem = peer_max_pdu_problem(ac.user_information.max_length)
    if problem is not None:
        raise RemoteProtocolError(
            f"A-ASSOCIATE-AC unusable: {problem}",
            field="maximum length",
            abort_reason=AbortReason.INVALID_PDU_PARAMETER_VALUE,
        )
    proposed = {item.context_id: item for item in rq.presentation_contexts}
    answers: dict[int, PresentationContextAC] = {}
    for answer in ac.presentation_contexts:
        if answer.context_id not in proposed:
            raise RemoteProtocolError(
                f"A-ASSOCIATE-AC answers presentation context {answer.context_id}, "
                "which was never proposed",
                field="presentation context ID",
                abort_reason=AbortReason.INVALID_PDU_PARAMETER_VALUE,
            )
        if answer.context_id in answers:
            raise RemoteProtocolError(
                f"A-ASSOCIATE-AC answers presentation context {answer.context_id} twice",
                field="presentation context ID",
                abort_reason=AbortReason.INVALID_PDU_PARAMETER_VALUE,
            )
        answers[answer.context_id] = answer

    our_roles = {item.sop_class_uid: item for item in rq.user_information.role_selections}
    their_roles: dict[str, RoleSelection] = {}
    for item in ac.user_information.role_selections:
        their_roles.setdefault(clean_uid(item.sop_class_uid), item)

    accepted: dict[int, AcceptedContext] = {}
    rejected: list[RejectedContext] = []
    for cid, context in proposed.items():
        reply = answers.get(cid)
        if reply is None:
            # PS3.8 §9.3.3.2 wants an answer for every context; a missing one cannot be used,
            # so count it as rejected rather than dropping an otherwise usable association.
            rejected.append(RejectedContext(cid, context.abstract_syntax, ContextResult.NO_REASON))
            continue
        result = _result(reply.result)
        if result is not ContextResult.ACCEPTANCE:
            rejected.append(RejectedContext(cid, context.abstract_syntax, result))
            continue
        ts = clean_uid(reply.transfer_syntax)
        if ts not in context.transfer_syntaxes:
            # An empty UID would read as "transfer syntax , which": name the emptiness.
            chosen = f"transfer syntax {ts}" if ts else "an empty transfer syntax UID"
            raise RemoteProtocolError(
                f"A-ASSOCIATE-AC accepts presentation context {cid} with {chosen}, "
                "which was not proposed for it",
                field="transfer syntax",
                abort_reason=AbortReason.INVALID_PDU_PARAMETER_VALUE,
            )
        scu, scp = _our_roles(our_roles.get(context.abstract_syntax), their_roles)
        accepted[cid] = AcceptedContext(cid, context.abstract_syntax, ts, scu, scp)

    if not accepted:
        raise AllContextsRejected(rejected, rq.called_ae_title)

    async_window = (
        ac.user_information.async_ops_window
        if rq.user_information.async_ops_window is not None
        else None
    )
    identity = ac.user_information.user_identity_ac
    asked = {item.sop_class_uid for item in rq.user_information.extended_negotiations}
    extended = {
        clean_uid(item.sop_class_uid): item.service_class_application_information
        for item in ac.user_information.extended_negotiations
        if clean_uid(item.sop_class_uid) in asked
    }
    return Negotiated(
        accepted=accepted,
        rejected=tuple(rejected),
        max_pdu_to_peer=ac.user_information.max_length,
        max_pdu_from_peer=rq.user_information.max_length,
        peer_implementation_class_uid=ac.user_information.implementation_class_uid,
        peer_implementation_version_name=ac.user_information.implementation_version_name,
        calling_ae=rq.calling_ae_title.strip(),
        called_ae=rq.called_ae_title.strip(),
        is_requestor=True,
        # PS3.7 D.3.3.3: an AC window only means something when we proposed one.
        async_window=async_window,
        user_identity_response=(
            identity.server_response
            if identity is not None and rq.user_information.user_identity_rq is not None
            else None
        ),
        extended_negotiation=extended,
    )


def requestor_window(proposed: AsyncOpsWindow | None, answered: AsyncOpsWindow | None) -> int:
    """How many operations the requestor may have outstanding: the A-ASSOCIATE-AC's
    maximum-number-operations-invoked, which the acceptor states for the requestor (PS3.7
    D.3.3.3), never more than proposed; 1 (synchronous) when either side left the window out.
    0 means unlimited: what we proposed stands."""
    if proposed is None or answered is None:
        return 1
    ours = max(1, proposed.max_invoked)
    granted = answered.max_invoked
    return ours if granted == 0 else max(1, min(ours, granted))


def _result(value: int) -> ContextResult:
    # A result outside PS3.8 Table 9-18 still is not acceptance: read it as "no reason".
    try:
        return ContextResult(value)
    except ValueError:
        return ContextResult.NO_REASON


def _our_roles(
    proposal: RoleSelection | None, answers: Mapping[str, RoleSelection]
) -> tuple[bool, bool]:
    """(we_are_scu, we_are_scp) per PS3.7 D.3.3.4."""
    if proposal is None:
        # No item proposed: default roles, requestor SCU only; an answer is ignored.
        return True, False
    answer = answers.get(proposal.sop_class_uid)
    if answer is None:
        # No item returned: default roles again (PS3.7 D.3.3.4, and its Note 2).
        return True, False
    # A role is ours only if we proposed it AND the acceptor returned 1; a 1 for a role we
    # did not propose is ignored, as the standard tells the requestor to do.
    return (
        proposal.scu_role and answer.scu_role,
        proposal.scp_role and answer.scp_role,
    )
