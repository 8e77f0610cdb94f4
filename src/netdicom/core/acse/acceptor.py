"""The association acceptor: answer an A-ASSOCIATE-RQ with an AC or an RJ."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence

from netdicom.core import uids
from netdicom.core.acse.model import AcceptedContext, Negotiated, RejectedContext
from netdicom.core.acse.validation import (
    check_max_pdu,
    clean_ae_title,
    clean_uid,
    peer_max_pdu_problem,
)
from netdicom.core.errors import LocalProtocolError
from netdicom.core.pdu.types import (
    AssociateAC,
    AssociateRJ,
    AssociateRQ,
    AsyncOpsWindow,
    ContextResult,
    PresentationContextAC,
    RoleSelection,
    SOPClassExtendedNegotiation,
    UserIdentityAC,
    UserIdentityRQ,
    UserInformation,
)
from netdicom.core.records import frozen

TransferSyntaxChooser = Callable[[str, tuple[str, ...]], "str | ContextResult"]
"""(abstract syntax, offered transfer syntaxes) -> the chosen one, or why the context fails."""

SopClassSet = frozenset[str] | Callable[[str], bool]
"""A set of SOP class UIDs, or a predicate over them."""

IdentityChecker = Callable[[UserIdentityRQ], "bytes | bool | None"]
ExtendedNegotiator = Callable[[str, bytes], "bytes | None"]

DEFAULT_MAX_PDU = 256 * 1024  # DESIGN.md §3: advertise a large value for what we receive

# A-ASSOCIATE-RJ parameters (PS3.8 Table 9-21): result 1 = rejected-permanent.
_PERMANENT = 1
_SERVICE_USER = 1
_SERVICE_PROVIDER_ACSE = 2


def default_chooser(supported: Mapping[str, Sequence[str]]) -> TransferSyntaxChooser:
    """A chooser that accepts the abstract syntaxes of `supported` only.

    `supported` maps an abstract syntax to its transfer syntaxes in our order of preference.
    The chooser answers the first preferred syntax that was offered; failing that, Implicit VR
    Little Endian when it was offered (the default syntax every DICOM AE supports, PS3.5 §10.1);
    otherwise TRANSFER_SYNTAXES_NOT_SUPPORTED. An abstract syntax missing from `supported` gets
    ABSTRACT_SYNTAX_NOT_SUPPORTED.
    """
    table = {abstract: tuple(preference) for abstract, preference in supported.items()}

    def choose(abstract_syntax: str, offered: tuple[str, ...]) -> str | ContextResult:
        preference = table.get(abstract_syntax)
        if preference is None:
            return ContextResult.ABSTRACT_SYNTAX_NOT_SUPPORTED
        for ts in preference:
            if ts in offered:
                return ts
        if uids.IMPLICIT_VR_LE in offered:
            return uids.IMPLICIT_VR_LE
        return ContextResult.TRANSFER_SYNTAXES_NOT_SUPPORTED

    return choose


@frozen(kw_only=True)
class AcceptorPolicy:
    """What we accept as association acceptor.

    - `transfer_syntax_chooser`: see `default_chooser`.
    - `sending_chooser`: when set, chooses instead for a context whose requestor proposed the
      SCP role (C-GET's storage contexts, PS3.4 C.4.3.1), with the SCU role or without: we
      send on it, so what we can send rules rather than what we would like to receive (a
      requestor proposing both roles got JPEG Lossless for its C-GET, as for a C-STORE, and
      nothing held uncompressed could be sent to it).
    - `can_act_as_scp`: SOP classes whose requests we answer; None means all of them (the
      default role of an acceptor, PS3.7 D.3.3.4).
    - `can_act_as_scu`: SOP classes for which we may send requests to the requestor, e.g. the
      storage classes of C-GET, where we send C-STORE to the requestor acting as SCP.
    - `support_async`: answer a proposed Asynchronous Operations Window granting the
      requestor up to `async_limit` outstanding operations (never more than it proposed);
      otherwise we answer 1/1 (synchronous).
    - `require_called_ae`: reject a request whose Called AE Title is not `ae_title`.
    - `allowed_callers`: when set, reject callers whose AE title is not in it.
    - `identity_checker`: judges a User Identity sub-item: False rejects the association, True
      or bytes accepts it (bytes = server response), None accepts it without a response. No
      checker: the item is ignored.
    - `extended_negotiator`: (SOP class, application information) -> our answer, or None for no
      answer. Only asked for SOP classes of accepted contexts.
    """

    ae_title: str
    transfer_syntax_chooser: TransferSyntaxChooser
    sending_chooser: TransferSyntaxChooser | None = None
    max_pdu: int = DEFAULT_MAX_PDU
    can_act_as_scp: SopClassSet | None = None
    can_act_as_scu: SopClassSet = frozenset()
    support_async: bool = False
    async_limit: int = 8
    implementation_class_uid: str = uids.IMPLEMENTATION_CLASS_UID
    implementation_version_name: str | None = uids.IMPLEMENTATION_VERSION_NAME
    require_called_ae: bool = False
    allowed_callers: frozenset[str] | None = None
    identity_checker: IdentityChecker | None = None
    extended_negotiator: ExtendedNegotiator | None = None


def _member(sop_classes: SopClassSet | None, sop_class: str) -> bool:
    if sop_classes is None:
        return True
    if isinstance(sop_classes, frozenset):
        return sop_class in sop_classes
    return sop_classes(sop_class)


def negotiate_acceptor(
    rq: AssociateRQ, policy: AcceptorPolicy
) -> tuple[AssociateAC, Negotiated] | AssociateRJ:
    """Answer `rq` under `policy`: the A-ASSOCIATE-AC and what it agrees, or an A-ASSOCIATE-RJ.

    Every proposed presentation context gets an answer. An association whose every context is
    rejected is still accepted here, as the standard does; the requestor reports it.
    """
    check_max_pdu(policy.max_pdu)
    our_title = clean_ae_title(policy.ae_title, "our")
    rejection = _check_association(rq, policy, our_title)
    if rejection is not None:
        return rejection

    info = rq.user_information
    identity_ac: UserIdentityAC | None = None
    if info.user_identity_rq is not None and policy.identity_checker is not None:
        verdict = policy.identity_checker(info.user_identity_rq)
        if verdict is False:
            # PS3.7 D.3.3.7: an association refused for authorization is rejected permanently
            # with source "UL service-provider (ACSE related function)"; of that source's
            # reasons (PS3.8 Table 9-21) only 1, no-reason-given, fits.
            return AssociateRJ(_PERMANENT, _SERVICE_PROVIDER_ACSE, 1)
        if info.user_identity_rq.positive_response_requested and verdict is not None:
            # PS3.7 D.3.3.7.2: the 0x59 sub-item is sent only when asked for and accepted.
            identity_ac = UserIdentityAC(verdict if isinstance(verdict, bytes) else b"")

    role_answers, requestor_roles = _answer_roles(info.role_selections, policy)
    answers, accepted, rejected = _answer_contexts(rq, policy, requestor_roles)

    async_window = _answer_async(info.async_ops_window, policy)
    extended = _answer_extended(info.extended_negotiations, accepted.values(), policy)

    ac = AssociateAC(
        # PS3.8 §9.3.3: these fields echo the RQ and are not tested by the requestor.
        called_ae_title=rq.called_ae_title.strip(),
        calling_ae_title=rq.calling_ae_title.strip(),
        presentation_contexts=tuple(answers),
        user_information=UserInformation(
            max_length=policy.max_pdu,
            implementation_class_uid=policy.implementation_class_uid,
            implementation_version_name=policy.implementation_version_name,
            async_ops_window=async_window,
            role_selections=tuple(role_answers),
            extended_negotiations=tuple(extended),
            user_identity_ac=identity_ac,
        ),
        application_context_name=uids.APPLICATION_CONTEXT,
    )
    negotiated = Negotiated(
        accepted=accepted,
        rejected=tuple(rejected),
        max_pdu_to_peer=info.max_length,
        max_pdu_from_peer=policy.max_pdu,
        peer_implementation_class_uid=info.implementation_class_uid,
        peer_implementation_version_name=info.implementation_version_name,
        calling_ae=rq.calling_ae_title.strip(),
        called_ae=rq.called_ae_title.strip(),
        is_requestor=False,
        async_window=async_window,
        user_identity_response=None if identity_ac is None else identity_ac.server_response,
        extended_negotiation={
            item.sop_class_uid: item.service_class_application_information for item in extended
        },
    )
    return ac, negotiated


def _check_association(
    rq: AssociateRQ, policy: AcceptorPolicy, our_title: str
) -> AssociateRJ | None:
    # PS3.8 §9.3.2 / Table 9-11: a v1-only receiver tests bit 0 of the protocol version.
    if not rq.protocol_version & 1:
        return AssociateRJ(_PERMANENT, _SERVICE_PROVIDER_ACSE, 2)
    if clean_uid(rq.application_context_name) != uids.APPLICATION_CONTEXT:
        return AssociateRJ(_PERMANENT, _SERVICE_USER, 2)
    calling = rq.calling_ae_title.strip(" ")
    called = rq.called_ae_title.strip(" ")
    # An empty or all-space title is the "no name" value PS3.8 Table 9-11 forbids. The only
    # reasons Table 9-21 offers that name a title are "calling AE title not recognized" (3)
    # and "called AE title not recognized" (7), so we answer with the one for that title.
    if title_problem(calling) is not None:
        return AssociateRJ(_PERMANENT, _SERVICE_USER, 3)
    if title_problem(called) is not None:
        return AssociateRJ(_PERMANENT, _SERVICE_USER, 7)
    # Titles are compared trimmed: leading and trailing spaces are not significant.
    if policy.require_called_ae and called != our_title:
        return AssociateRJ(_PERMANENT, _SERVICE_USER, 7)
    if policy.allowed_callers is not None and calling not in {
        title.strip(" ") for title in policy.allowed_callers
    }:
        return AssociateRJ(_PERMANENT, _SERVICE_USER, 3)
    if peer_max_pdu_problem(rq.user_information.max_length) is not None:
        # We could not send a single response without breaking its limit. Table 9-21 has
        # no reason for it: 1, no reason given.
        return AssociateRJ(_PERMANENT, _SERVICE_USER, 1)
    return None


def title_problem(title: str) -> str | None:
    """What makes a peer's AE title unusable, or None. Empty or all spaces is "no name"
    (PS3.8 Table 9-11); a control character or a backslash is not allowed in the AE VR (PS3.5
    Table 6.2-1): a title with a newline or an escape sequence is nobody's, refused before it
    reaches a log or an --allow list."""
    stripped = title.strip(" ")
    if not stripped:
        return "is empty"
    if any(char < " " or char in "\\\x7f" for char in stripped):
        return "holds a control character or a backslash"
    return None


def _answer_roles(
    proposals: Sequence[RoleSelection], policy: AcceptorPolicy
) -> tuple[list[RoleSelection], dict[str, tuple[bool, bool]]]:
    """The role items to return and the requestor's (scu, scp) roles per SOP class that
    carried an item (PS3.7 D.3.3.4)."""
    answers: list[RoleSelection] = []
    roles: dict[str, tuple[bool, bool]] = {}
    for proposal in proposals:
        sop_class = clean_uid(proposal.sop_class_uid)
        if sop_class in roles or not (proposal.scu_role or proposal.scp_role):
            # One item per SOP class: a repeat is ignored. An item proposing neither role is
            # not one of the three values Table D.3-9 allows; we ignore it and the default
            # roles apply, rather than refuse the association for it.
            continue
        # The requestor as SCU needs us as SCP and the other way round; we return 1 only for a
        # role that was proposed and that we can play.
        scu = proposal.scu_role and _member(policy.can_act_as_scp, sop_class)
        scp = proposal.scp_role and _member(policy.can_act_as_scu, sop_class)
        roles[sop_class] = (scu, scp)
        answers.append(RoleSelection(sop_class_uid=sop_class, scu_role=scu, scp_role=scp))
    return answers, roles


def _answer_contexts(
    rq: AssociateRQ, policy: AcceptorPolicy, requestor_roles: Mapping[str, tuple[bool, bool]]
) -> tuple[list[PresentationContextAC], dict[int, AcceptedContext], list[RejectedContext]]:
    answers: list[PresentationContextAC] = []
    accepted: dict[int, AcceptedContext] = {}
    rejected: list[RejectedContext] = []
    id_counts = Counter(item.context_id for item in rq.presentation_contexts)
    for item in rq.presentation_contexts:
        cid = item.context_id
        abstract = clean_uid(item.abstract_syntax)
        offered = tuple(clean_uid(ts) for ts in item.transfer_syntaxes)
        outcome: str | ContextResult
        scu, scp = requestor_roles.get(abstract, (True, False))
        chooser = policy.transfer_syntax_chooser
        if scp and policy.sending_chooser is not None:
            chooser = policy.sending_chooser
        if cid % 2 == 0 or id_counts[cid] > 1:
            # PS3.8 §9.3.2.2: IDs are odd and unique. Rather than abort a whole association
            # for one bad item we answer it "no reason" (2); a duplicated ID gets that answer
            # on every occurrence, so the requestor cannot pair it with a conflicting result.
            outcome = ContextResult.NO_REASON
        else:
            outcome = chooser(abstract, offered)
            if outcome is ContextResult.ACCEPTANCE or (
                isinstance(outcome, str) and outcome not in offered
            ):
                raise LocalProtocolError(
                    f"transfer syntax chooser answered {outcome!r} for {abstract}; it must "
                    f"return one of the offered syntaxes {offered} or a rejection reason"
                )
        if isinstance(outcome, str):
            if not (scu or scp):
                # The role answer leaves neither side a role for this SOP class, so the context
                # could never carry a message: reject it rather than accept a dead context.
                outcome = ContextResult.USER_REJECTION
            else:
                answers.append(PresentationContextAC(cid, ContextResult.ACCEPTANCE, outcome))
                # Our roles are the mirror of the requestor's.
                accepted[cid] = AcceptedContext(cid, abstract, outcome, scp, scu)
                continue
        answers.append(PresentationContextAC(cid, outcome))
        rejected.append(RejectedContext(cid, abstract, outcome))
    return answers, accepted, rejected


def _answer_async(proposal: AsyncOpsWindow | None, policy: AcceptorPolicy) -> AsyncOpsWindow | None:
    # PS3.7 D.3.3.3: answered only when proposed; 1/1 means synchronous operation.
    if proposal is None:
        return None
    if not policy.support_async:
        return AsyncOpsWindow(1, 1)

    # Both fields of the AC are stated for the requestor (PS3.7 D.3.3.3): how many
    # operations it may invoke (we perform them: up to async_limit, 0 asked for unlimited,
    # which we never grant) and how many it may perform, which is how many we may invoke:
    # our sub-operations go one at a time. (Answered with the fields the other way round
    # until walkthrough 5: netdicom agreed with itself, and with no one else.)
    invoked = proposal.max_invoked
    granted = policy.async_limit if invoked == 0 else min(invoked, policy.async_limit)
    return AsyncOpsWindow(max_invoked=granted, max_performed=1)


def _answer_extended(
    proposals: Sequence[SOPClassExtendedNegotiation],
    accepted: Iterable[AcceptedContext],
    policy: AcceptorPolicy,
) -> list[SOPClassExtendedNegotiation]:
    # PS3.7 D.3.3.5: answered with what WE support, only for SOP classes we accepted, never
    # echoed; one answer per SOP class.
    if policy.extended_negotiator is None:
        return []
    supported = {context.abstract_syntax for context in accepted}
    answers: list[SOPClassExtendedNegotiation] = []
    seen: set[str] = set()
    for proposal in proposals:
        sop_class = clean_uid(proposal.sop_class_uid)
        if sop_class in seen or sop_class not in supported:
            continue
        seen.add(sop_class)
        answer = policy.extended_negotiator(
            sop_class, proposal.service_class_application_information
        )
        if answer is not None:
            answers.append(SOPClassExtendedNegotiation(sop_class, answer))
    return answers
