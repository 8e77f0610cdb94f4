"""Association negotiation (netdicom.core.acse) against PS3.7 Annex D.3 and PS3.8 §9.3."""

from __future__ import annotations

import dataclasses
from dataclasses import replace

import pytest

from netdicom.core import uids
from netdicom.core.acse import (
    AcceptorPolicy,
    AllContextsRejected,
    Negotiated,
    ProposedContext,
    RejectedContext,
    build_associate_rq,
    default_chooser,
    negotiate_acceptor,
    negotiate_requestor,
    requestor_window,
)
from netdicom.core.errors import (
    AbortReason,
    LocalProtocolError,
    NoAcceptedContext,
    RemoteProtocolError,
)
from netdicom.core.pdu.types import (
    AssociateAC,
    AssociateRJ,
    AssociateRQ,
    AsyncOpsWindow,
    ContextResult,
    PresentationContextAC,
    PresentationContextRQ,
    RoleSelection,
    SOPClassExtendedNegotiation,
    UserIdentityAC,
    UserIdentityRQ,
    UserIdentityType,
    UserInformation,
)

CT = "1.2.840.10008.5.1.4.1.1.2"  # CT Image Storage
MR = "1.2.840.10008.5.1.4.1.1.4"  # MR Image Storage
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
IMPLICIT = uids.IMPLICIT_VR_LE
EXPLICIT = uids.EXPLICIT_VR_LE
UNKNOWN_SOP = "1.2.3.4.5.6.7"


def rq_for(*contexts: ProposedContext, **kwargs: object) -> AssociateRQ:
    args: dict[str, object] = {
        "calling_ae": "SCU",
        "called_ae": "ANY-SCP",
        "contexts": contexts,
        "max_pdu": 16384,
    }
    args.update(kwargs)
    return build_associate_rq(**args)  # type: ignore[arg-type]


def ac_for(
    rq: AssociateRQ,
    answers: tuple[PresentationContextAC, ...],
    **user_info: object,
) -> AssociateAC:
    info: dict[str, object] = {"max_length": 32768, "implementation_class_uid": "1.2.3.4"}
    info.update(user_info)
    return AssociateAC(
        called_ae_title=rq.called_ae_title,
        calling_ae_title=rq.calling_ae_title,
        presentation_contexts=answers,
        user_information=UserInformation(**info),  # type: ignore[arg-type]
    )


def raw_rq(
    contexts: tuple[PresentationContextRQ, ...],
    *,
    calling: str = "SCU",
    called: str = "OUR-SCP",
    **user_info: object,
) -> AssociateRQ:
    """An RQ as the decoder would hand it over, without our builder's checks."""
    info: dict[str, object] = {"max_length": 16384, "implementation_class_uid": "1.2.3.9"}
    info.update(user_info)
    return AssociateRQ(
        called_ae_title=called,
        calling_ae_title=calling,
        presentation_contexts=contexts,
        user_information=UserInformation(**info),  # type: ignore[arg-type]
    )


POLICY = AcceptorPolicy(
    ae_title="OUR-SCP",
    transfer_syntax_chooser=default_chooser(
        {
            uids.VERIFICATION: (EXPLICIT, IMPLICIT),
            CT: (JPEG_BASELINE, EXPLICIT),
            MR: (EXPLICIT,),
        }
    ),
)


def accept(rq: AssociateRQ, policy: AcceptorPolicy = POLICY) -> tuple[AssociateAC, Negotiated]:
    outcome = negotiate_acceptor(rq, policy)
    assert not isinstance(outcome, AssociateRJ), outcome
    return outcome


# ---------------------------------------------------------------- requestor: building the RQ


def test_context_ids_are_odd_unique_and_in_order() -> None:
    rq = rq_for(
        ProposedContext(CT, (EXPLICIT, IMPLICIT)),
        ProposedContext(CT, (JPEG_BASELINE,)),  # same abstract syntax twice is allowed
        ProposedContext(uids.VERIFICATION, (IMPLICIT,)),
    )
    ids = [item.context_id for item in rq.presentation_contexts]
    assert ids == [1, 3, 5]
    assert [item.abstract_syntax for item in rq.presentation_contexts] == [
        CT,
        CT,
        uids.VERIFICATION,
    ]
    assert rq.presentation_contexts[1].transfer_syntaxes == (JPEG_BASELINE,)
    assert rq.application_context_name == uids.APPLICATION_CONTEXT


def test_128_contexts_fit_and_129_are_refused() -> None:
    many = [ProposedContext(CT, (IMPLICIT,))] * 129
    rq = rq_for(*many[:128])
    ids = [item.context_id for item in rq.presentation_contexts]
    assert ids[0] == 1 and ids[-1] == 255
    assert len(set(ids)) == 128 and all(cid % 2 == 1 for cid in ids)
    with pytest.raises(LocalProtocolError, match="split them over several associations"):
        rq_for(*many)


def test_at_least_one_context_and_one_transfer_syntax() -> None:
    with pytest.raises(LocalProtocolError, match="at least one"):
        rq_for()
    with pytest.raises(LocalProtocolError, match="no transfer syntax"):
        rq_for(ProposedContext(CT, ()))


@pytest.mark.parametrize("uid", ["", "1.2.x", "1..2", "1.2.", "1." + "2" * 64])
def test_malformed_uids_are_refused(uid: str) -> None:
    with pytest.raises(LocalProtocolError):
        rq_for(ProposedContext(uid, (IMPLICIT,)))
    with pytest.raises(LocalProtocolError):
        rq_for(ProposedContext(CT, (uid,)))


@pytest.mark.parametrize(
    "title",
    ["", "    ", " " * 16, "A" * 17, "BAD\\AE", "TAB\tAE", "NUL\x00", "ÄE"],
)
def test_bad_ae_titles_are_refused(title: str) -> None:
    with pytest.raises(LocalProtocolError, match="AE title"):
        rq_for(ProposedContext(CT, (IMPLICIT,)), calling_ae=title)
    with pytest.raises(LocalProtocolError, match="AE title"):
        rq_for(ProposedContext(CT, (IMPLICIT,)), called_ae=title)


def test_ae_titles_are_trimmed_and_16_chars_allowed() -> None:
    rq = rq_for(ProposedContext(CT, (IMPLICIT,)), calling_ae="  ME  ", called_ae="B" * 16)
    assert rq.calling_ae_title == "ME"
    assert rq.called_ae_title == "B" * 16


def test_version_name_at_most_16_chars() -> None:
    ctx = ProposedContext(CT, (IMPLICIT,))
    rq = rq_for(ctx, implementation_version_name="V" * 16)
    assert rq.user_information.implementation_version_name == "V" * 16
    assert (
        rq_for(ctx, implementation_version_name=None).user_information.implementation_version_name
        is None
    )
    with pytest.raises(LocalProtocolError, match="version name"):
        rq_for(ctx, implementation_version_name="V" * 17)
    with pytest.raises(LocalProtocolError, match="version name"):
        rq_for(ctx, implementation_version_name="")


def test_max_pdu_zero_means_unlimited_and_range_is_checked() -> None:
    ctx = ProposedContext(CT, (IMPLICIT,))
    assert rq_for(ctx, max_pdu=0).user_information.max_length == 0
    assert rq_for(ctx, max_pdu=0xFFFFFFFF).user_information.max_length == 0xFFFFFFFF
    # 7 leaves room for an odd fragment only: what a peer of ours refuses, we never offer.
    for bad in (-1, 3, 7, 0x1_0000_0000):
        with pytest.raises(LocalProtocolError, match="maximum PDU"):
            rq_for(ctx, max_pdu=bad)
    assert rq_for(ctx, max_pdu=8).user_information.max_length == 8


def test_one_role_item_per_sop_class() -> None:
    rq = rq_for(
        ProposedContext(CT, (IMPLICIT,)),
        ProposedContext(CT, (EXPLICIT,)),
        ProposedContext(MR, (IMPLICIT,)),
        roles={CT: (False, True), MR: (True, True)},
    )
    assert rq.user_information.role_selections == (
        RoleSelection(CT, scu_role=False, scp_role=True),
        RoleSelection(MR, scu_role=True, scp_role=True),
    )
    assert rq_for(ProposedContext(CT, (IMPLICIT,))).user_information.role_selections == ()


def test_role_items_must_propose_a_role_for_a_proposed_class() -> None:
    with pytest.raises(LocalProtocolError, match="neither role"):
        rq_for(ProposedContext(CT, (IMPLICIT,)), roles={CT: (False, False)})
    with pytest.raises(LocalProtocolError, match="no proposed context"):
        rq_for(ProposedContext(CT, (IMPLICIT,)), roles={MR: (False, True)})


def test_optional_sub_items_only_when_given() -> None:
    ctx = ProposedContext(CT, (IMPLICIT,))
    plain = rq_for(ctx).user_information
    assert plain.async_ops_window is None and plain.user_identity_rq is None
    assert plain.extended_negotiations == ()
    assert plain.implementation_class_uid == uids.IMPLEMENTATION_CLASS_UID
    identity = UserIdentityRQ(UserIdentityType.USERNAME, True, b"alice")
    full = rq_for(
        ctx,
        async_window=AsyncOpsWindow(4, 2),
        user_identity=identity,
        extended=[SOPClassExtendedNegotiation(CT, b"\x01")],
    ).user_information
    assert full.async_ops_window == AsyncOpsWindow(4, 2)
    assert full.user_identity_rq == identity
    assert full.extended_negotiations == (SOPClassExtendedNegotiation(CT, b"\x01"),)
    with pytest.raises(LocalProtocolError, match="more than one"):
        rq_for(
            ctx,
            extended=[SOPClassExtendedNegotiation(CT, b"\x01")] * 2,
        )


# ------------------------------------------------------------ requestor: reading the AC


def test_requestor_pairs_contexts_and_directions_of_max_pdu() -> None:
    rq = rq_for(
        ProposedContext(CT, (JPEG_BASELINE, IMPLICIT)),
        ProposedContext(MR, (IMPLICIT,)),
    )
    ac = ac_for(
        rq,
        (
            PresentationContextAC(1, ContextResult.ACCEPTANCE, IMPLICIT),
            PresentationContextAC(3, ContextResult.ABSTRACT_SYNTAX_NOT_SUPPORTED),
        ),
        max_length=0,
        implementation_version_name="PEER_1",
    )
    neg = negotiate_requestor(rq, ac)
    assert list(neg.accepted) == [1]
    ctx = neg.accepted[1]
    assert (ctx.abstract_syntax, ctx.transfer_syntax) == (CT, IMPLICIT)
    assert (ctx.we_are_scu, ctx.we_are_scp) == (True, False)
    assert neg.rejected == (RejectedContext(3, MR, ContextResult.ABSTRACT_SYNTAX_NOT_SUPPORTED),)
    assert neg.max_pdu_to_peer == 0  # peer set no limit
    assert neg.max_pdu_from_peer == 16384
    assert neg.peer_implementation_class_uid == "1.2.3.4"
    assert neg.peer_implementation_version_name == "PEER_1"
    assert (neg.calling_ae, neg.called_ae, neg.is_requestor) == ("SCU", "ANY-SCP", True)
    assert neg.async_window is None and neg.user_identity_response is None


def test_ac_with_unknown_context_id_is_a_remote_error() -> None:
    rq = rq_for(ProposedContext(CT, (IMPLICIT,)))
    ac = ac_for(
        rq,
        (
            PresentationContextAC(1, ContextResult.ACCEPTANCE, IMPLICIT),
            PresentationContextAC(7, ContextResult.ACCEPTANCE, IMPLICIT),
        ),
    )
    with pytest.raises(RemoteProtocolError, match="never proposed") as info:
        negotiate_requestor(rq, ac)
    assert info.value.field == "presentation context ID"
    assert info.value.abort_reason is AbortReason.INVALID_PDU_PARAMETER_VALUE


def test_ac_answering_a_context_twice_is_a_remote_error() -> None:
    rq = rq_for(ProposedContext(CT, (IMPLICIT,)))
    answer = PresentationContextAC(1, ContextResult.ACCEPTANCE, IMPLICIT)
    with pytest.raises(RemoteProtocolError, match="twice"):
        negotiate_requestor(rq, ac_for(rq, (answer, answer)))


def test_ac_choosing_a_transfer_syntax_we_did_not_offer_is_a_remote_error() -> None:
    rq = rq_for(ProposedContext(CT, (IMPLICIT,)))
    ac = ac_for(rq, (PresentationContextAC(1, ContextResult.ACCEPTANCE, EXPLICIT),))
    with pytest.raises(RemoteProtocolError, match="not proposed") as info:
        negotiate_requestor(rq, ac)
    assert info.value.field == "transfer syntax"


@pytest.mark.parametrize("max_length", [1, 6, 7])
def test_ac_whose_max_pdu_leaves_no_room_for_data_is_a_remote_error(max_length: int) -> None:
    # Every P-DATA-TF we could send would break the peer's own limit (we sent 2-byte
    # fragments in 8-byte PDUs to such a peer, 100 times slower than anyone else).
    rq = rq_for(ProposedContext(CT, (IMPLICIT,)))
    ac = ac_for(rq, (PresentationContextAC(1, ContextResult.ACCEPTANCE, IMPLICIT),),
                max_length=max_length)  # fmt: skip
    with pytest.raises(RemoteProtocolError, match=f"maximum PDU length {max_length} "):
        negotiate_requestor(rq, ac)


@pytest.mark.parametrize("max_length", [0, 8, 16384])
def test_ac_max_pdu_of_no_limit_or_room_for_a_fragment_is_taken(max_length: int) -> None:
    rq = rq_for(ProposedContext(CT, (IMPLICIT,)))
    ac = ac_for(rq, (PresentationContextAC(1, ContextResult.ACCEPTANCE, IMPLICIT),),
                max_length=max_length)  # fmt: skip
    assert negotiate_requestor(rq, ac).max_pdu_to_peer == max_length


@pytest.mark.parametrize(("max_length", "rejected"), [(1, True), (7, True), (8, False), (0, False)])
def test_rq_whose_max_pdu_leaves_no_room_for_data_is_rejected(
    max_length: int, rejected: bool
) -> None:
    rq = raw_rq((PresentationContextRQ(1, CT, (EXPLICIT,)),), max_length=max_length)
    outcome = negotiate_acceptor(rq, POLICY)
    if rejected:
        assert outcome == AssociateRJ(1, 1, 1)  # permanent, service user, no reason given
    else:
        assert not isinstance(outcome, AssociateRJ), outcome


def test_transfer_syntax_trailing_nul_is_tolerated() -> None:
    rq = rq_for(ProposedContext(CT, (EXPLICIT,)))
    ac = ac_for(rq, (PresentationContextAC(1, ContextResult.ACCEPTANCE, EXPLICIT + "\x00"),))
    assert negotiate_requestor(rq, ac).accepted[1].transfer_syntax == EXPLICIT


def test_unanswered_context_counts_as_rejected() -> None:
    rq = rq_for(ProposedContext(CT, (IMPLICIT,)), ProposedContext(MR, (IMPLICIT,)))
    ac = ac_for(rq, (PresentationContextAC(3, ContextResult.ACCEPTANCE, IMPLICIT),))
    neg = negotiate_requestor(rq, ac)
    assert list(neg.accepted) == [3]
    assert neg.rejected == (RejectedContext(1, CT, ContextResult.NO_REASON),)


def test_no_accepted_context_names_each_context_and_reason() -> None:
    rq = rq_for(
        ProposedContext(CT, (JPEG_BASELINE,)),
        ProposedContext(MR, (IMPLICIT,)),
        ProposedContext(UNKNOWN_SOP, (IMPLICIT,)),
    )
    ac = ac_for(
        rq,
        (
            PresentationContextAC(1, ContextResult.TRANSFER_SYNTAXES_NOT_SUPPORTED),
            PresentationContextAC(3, ContextResult.ABSTRACT_SYNTAX_NOT_SUPPORTED),
            PresentationContextAC(5, ContextResult.USER_REJECTION),
        ),
    )
    with pytest.raises(NoAcceptedContext) as info:
        negotiate_requestor(rq, ac)
    error = info.value
    assert isinstance(error, AllContextsRejected)
    message = str(error)
    assert f"context 1, CT Image Storage ({CT}): no proposed transfer syntax supported" in message
    assert f"context 3, MR Image Storage ({MR}): abstract syntax not supported" in message
    # pydicom does not know this UID: the bare UID stands for its name
    assert f"context 5, {UNKNOWN_SOP}: rejected by the user" in message
    assert "ANY-SCP" in message
    assert [item.reason for item in error.rejected] == [
        ContextResult.TRANSFER_SYNTAXES_NOT_SUPPORTED,
        ContextResult.ABSTRACT_SYNTAX_NOT_SUPPORTED,
        ContextResult.USER_REJECTION,
    ]


def _role_outcome(
    proposed: tuple[bool, bool] | None, answered: tuple[bool, bool] | None
) -> tuple[bool, bool]:
    roles = {CT: proposed} if proposed is not None else {}
    rq = rq_for(ProposedContext(CT, (IMPLICIT,)), roles=roles)
    items = (RoleSelection(CT, *answered),) if answered is not None else ()
    ac = ac_for(
        rq,
        (PresentationContextAC(1, ContextResult.ACCEPTANCE, IMPLICIT),),
        role_selections=items,
    )
    ctx = negotiate_requestor(rq, ac).accepted[1]
    return ctx.we_are_scu, ctx.we_are_scp


@pytest.mark.parametrize(
    ("proposed", "answered", "outcome"),
    [
        (None, None, (True, False)),  # no item at all: requestor is SCU
        (None, (True, True), (True, False)),  # unasked answer is ignored
        ((True, True), None, (True, False)),  # item not returned: default roles
        ((True, True), (True, True), (True, True)),
        ((True, True), (False, True), (False, True)),
        ((True, True), (True, False), (True, False)),
        ((False, True), (False, True), (False, True)),  # C-GET storage context
        ((False, True), (True, True), (False, True)),  # 1 for a role we did not propose
        ((True, False), (False, False), (False, False)),
    ],
)
def test_requestor_roles_per_d_3_3_4(
    proposed: tuple[bool, bool] | None,
    answered: tuple[bool, bool] | None,
    outcome: tuple[bool, bool],
) -> None:
    assert _role_outcome(proposed, answered) == outcome


def test_many_rejected_contexts_are_counted_not_listed() -> None:
    # 128 contexts written out made a 15 KB error line.
    rq = rq_for(*(ProposedContext(CT, (IMPLICIT,)) for _ in range(128)))
    unsupported = ContextResult.TRANSFER_SYNTAXES_NOT_SUPPORTED
    answers = (
        *(PresentationContextAC(2 * n + 1, unsupported) for n in range(127)),
        PresentationContextAC(255, ContextResult.ABSTRACT_SYNTAX_NOT_SUPPORTED),
    )
    with pytest.raises(AllContextsRejected) as info:
        negotiate_requestor(rq, ac_for(rq, answers))
    message = str(info.value)
    assert len(message) < 600, len(message)
    assert message.count("context ") == 4  # the first three by name, and "presentation context"
    assert (
        "and 125 more (124 no proposed transfer syntax supported, 1 abstract syntax not "
        "supported; -v lists them)" in message
    )
    assert len(info.value.rejected) == 128  # all of them, for callers


def test_async_window_only_when_we_proposed_it() -> None:
    ctx = ProposedContext(CT, (IMPLICIT,))
    answer = (PresentationContextAC(1, ContextResult.ACCEPTANCE, IMPLICIT),)
    plain = rq_for(ctx)
    neg = negotiate_requestor(plain, ac_for(plain, answer, async_ops_window=AsyncOpsWindow(5, 5)))
    assert neg.async_window is None
    asked = rq_for(ctx, async_window=AsyncOpsWindow(3, 3))
    neg = negotiate_requestor(asked, ac_for(asked, answer, async_ops_window=AsyncOpsWindow(1, 1)))
    assert neg.async_window == AsyncOpsWindow(1, 1)


def test_user_identity_response_and_extended_answers() -> None:
    identity = UserIdentityRQ(UserIdentityType.JWT, True, b"token")
    rq = rq_for(
        ProposedContext(CT, (IMPLICIT,)),
        user_identity=identity,
        extended=[SOPClassExtendedNegotiation(CT, b"\x01")],
    )
    ac = ac_for(
        rq,
        (PresentationContextAC(1, ContextResult.ACCEPTANCE, IMPLICIT),),
        user_identity_ac=UserIdentityAC(b"signed"),
        extended_negotiations=(
            SOPClassExtendedNegotiation(CT, b"\x00"),
            SOPClassExtendedNegotiation(MR, b"\x01"),  # not asked: ignored
        ),
    )
    neg = negotiate_requestor(rq, ac)
    assert neg.user_identity_response == b"signed"
    assert dict(neg.extended_negotiation) == {CT: b"\x00"}


def test_context_for_and_contexts_for() -> None:
    rq = rq_for(
        ProposedContext(CT, (JPEG_BASELINE,)),
        ProposedContext(CT, (EXPLICIT, IMPLICIT)),
        ProposedContext(MR, (IMPLICIT,)),
        roles={MR: (False, True)},
    )
    ac = ac_for(
        rq,
        (
            PresentationContextAC(1, ContextResult.ACCEPTANCE, JPEG_BASELINE),
            PresentationContextAC(3, ContextResult.ACCEPTANCE, EXPLICIT),
            PresentationContextAC(5, ContextResult.ACCEPTANCE, IMPLICIT),
        ),
        role_selections=(RoleSelection(MR, False, True),),
    )
    neg = negotiate_requestor(rq, ac)
    assert [c.context_id for c in neg.contexts_for(CT)] == [1, 3]
    assert neg.contexts_for(uids.VERIFICATION) == ()
    first = neg.context_for(CT)
    assert first is not None and first.context_id == 1
    explicit = neg.context_for(CT, EXPLICIT)
    assert explicit is not None and explicit.context_id == 3
    assert neg.context_for(CT, IMPLICIT) is None
    assert neg.context_for(MR) is None  # we are only SCP for MR
    scp = neg.context_for(MR, role="scp")
    assert scp is not None and scp.context_id == 5
    assert neg.context_for(CT, role="scp") is None


# ------------------------------------------------------------------------ acceptor


def test_unknown_application_context_is_rejected() -> None:
    rq = replace(
        raw_rq((PresentationContextRQ(1, CT, (IMPLICIT,)),)),
        application_context_name="1.2.3.4.5",
    )
    assert negotiate_acceptor(rq, POLICY) == AssociateRJ(1, 1, 2)
    # A trailing NUL on the name is tolerated (DESIGN.md §3).
    padded = replace(rq, application_context_name=uids.APPLICATION_CONTEXT + "\x00")
    assert not isinstance(negotiate_acceptor(padded, POLICY), AssociateRJ)


def test_protocol_version_tests_bit_0_only() -> None:
    rq = raw_rq((PresentationContextRQ(1, CT, (IMPLICIT,)),))
    assert negotiate_acceptor(replace(rq, protocol_version=2), POLICY) == AssociateRJ(1, 2, 2)
    assert not isinstance(negotiate_acceptor(replace(rq, protocol_version=3), POLICY), AssociateRJ)


@pytest.mark.parametrize(
    ("calling", "called", "expected"),
    [
        ("", "OUR-SCP", AssociateRJ(1, 1, 3)),
        (" " * 16, "OUR-SCP", AssociateRJ(1, 1, 3)),
        ("SCU", "", AssociateRJ(1, 1, 7)),
        ("SCU", " " * 16, AssociateRJ(1, 1, 7)),
    ],
)
def test_empty_or_all_space_ae_titles_are_rejected(
    calling: str, called: str, expected: AssociateRJ
) -> None:
    rq = raw_rq((PresentationContextRQ(1, CT, (IMPLICIT,)),), calling=calling, called=called)
    assert negotiate_acceptor(rq, POLICY) == expected


def test_called_ae_checked_only_when_required_and_compared_trimmed() -> None:
    rq = raw_rq((PresentationContextRQ(1, CT, (IMPLICIT,)),), called="SOMEONE-ELSE")
    assert not isinstance(negotiate_acceptor(rq, POLICY), AssociateRJ)
    strict = replace(POLICY, require_called_ae=True)
    assert negotiate_acceptor(rq, strict) == AssociateRJ(1, 1, 7)
    padded = replace(rq, called_ae_title=" OUR-SCP  ")
    assert not isinstance(negotiate_acceptor(padded, strict), AssociateRJ)


def test_allowed_callers() -> None:
    policy = replace(POLICY, allowed_callers=frozenset({"GOOD ", "OTHER"}))
    bad = raw_rq((PresentationContextRQ(1, CT, (IMPLICIT,)),), calling="EVIL")
    assert negotiate_acceptor(bad, policy) == AssociateRJ(1, 1, 3)
    good = raw_rq((PresentationContextRQ(1, CT, (IMPLICIT,)),), calling="  GOOD")
    assert not isinstance(negotiate_acceptor(good, policy), AssociateRJ)


def test_every_context_gets_an_answer_with_its_reason() -> None:
    rq = raw_rq(
        (
            PresentationContextRQ(1, CT, (IMPLICIT, EXPLICIT, JPEG_BASELINE)),
            PresentationContextRQ(3, UNKNOWN_SOP, (IMPLICIT,)),
            PresentationContextRQ(5, MR, (JPEG_BASELINE,)),
            PresentationContextRQ(7, MR, (IMPLICIT,)),
        )
    )
    ac, neg = accept(rq)
    assert ac.presentation_contexts == (
        # our preference wins over the order offered
        PresentationContextAC(1, ContextResult.ACCEPTANCE, JPEG_BASELINE),
        PresentationContextAC(3, ContextResult.ABSTRACT_SYNTAX_NOT_SUPPORTED),  # reason 3
        PresentationContextAC(5, ContextResult.TRANSFER_SYNTAXES_NOT_SUPPORTED),  # reason 4
        # implicit VR LE is not in MR's preference list but is always acceptable
        PresentationContextAC(7, ContextResult.ACCEPTANCE, IMPLICIT),
    )
    assert sorted(neg.accepted) == [1, 7]
    assert [r.context_id for r in neg.rejected] == [3, 5]
    assert (neg.accepted[1].we_are_scu, neg.accepted[1].we_are_scp) == (False, True)
    assert neg.is_requestor is False


def test_default_chooser_rules() -> None:
    choose = default_chooser({CT: (EXPLICIT,), MR: ()})
    assert choose(CT, (IMPLICIT, EXPLICIT)) == EXPLICIT
    assert choose(CT, (JPEG_BASELINE, IMPLICIT)) == IMPLICIT
    assert choose(MR, (IMPLICIT,)) == IMPLICIT
    assert choose(CT, (JPEG_BASELINE,)) is ContextResult.TRANSFER_SYNTAXES_NOT_SUPPORTED
    assert choose(MR, ()) is ContextResult.TRANSFER_SYNTAXES_NOT_SUPPORTED
    assert choose(UNKNOWN_SOP, (IMPLICIT,)) is ContextResult.ABSTRACT_SYNTAX_NOT_SUPPORTED


def test_even_and_duplicate_ids_are_answered_no_reason() -> None:
    rq = raw_rq(
        (
            PresentationContextRQ(1, CT, (IMPLICIT,)),
            PresentationContextRQ(2, CT, (IMPLICIT,)),
            PresentationContextRQ(5, MR, (IMPLICIT,)),
            PresentationContextRQ(5, CT, (IMPLICIT,)),
        )
    )
    ac, neg = accept(rq)
    assert [(a.context_id, a.result) for a in ac.presentation_contexts] == [
        (1, ContextResult.ACCEPTANCE),
        (2, ContextResult.NO_REASON),
        (5, ContextResult.NO_REASON),
        (5, ContextResult.NO_REASON),
    ]
    assert list(neg.accepted) == [1]


def test_all_rejected_is_still_accepted_at_acse_level() -> None:
    rq = raw_rq((PresentationContextRQ(1, UNKNOWN_SOP, (IMPLICIT,)),))
    ac, neg = accept(rq)
    assert ac.presentation_contexts == (
        PresentationContextAC(1, ContextResult.ABSTRACT_SYNTAX_NOT_SUPPORTED),
    )
    assert neg.accepted == {}


def test_chooser_returning_an_unoffered_syntax_is_our_bug() -> None:
    policy = replace(POLICY, transfer_syntax_chooser=lambda abstract, offered: EXPLICIT)
    with pytest.raises(LocalProtocolError, match="chooser"):
        negotiate_acceptor(raw_rq((PresentationContextRQ(1, CT, (IMPLICIT,)),)), policy)


def test_roles_proposed_both_we_play_only_scp() -> None:
    rq = raw_rq(
        (PresentationContextRQ(1, CT, (IMPLICIT,)), PresentationContextRQ(3, MR, (IMPLICIT,))),
        role_selections=(RoleSelection(CT, scu_role=True, scp_role=True),),
    )
    ac, neg = accept(rq)
    # only the SOP class that carried an item is answered; SCP role refused
    assert ac.user_information.role_selections == (RoleSelection(CT, True, False),)
    assert (neg.accepted[1].we_are_scu, neg.accepted[1].we_are_scp) == (False, True)
    assert (neg.accepted[3].we_are_scu, neg.accepted[3].we_are_scp) == (False, True)


def test_roles_proposed_both_we_play_both() -> None:
    rq = raw_rq(
        (PresentationContextRQ(1, CT, (IMPLICIT,)),),
        role_selections=(RoleSelection(CT, scu_role=True, scp_role=True),),
    )
    ac, neg = accept(rq, replace(POLICY, can_act_as_scu=frozenset({CT})))
    assert ac.user_information.role_selections == (RoleSelection(CT, True, True),)
    assert (neg.accepted[1].we_are_scu, neg.accepted[1].we_are_scp) == (True, True)


def test_roles_proposed_both_we_play_only_scu() -> None:
    rq = raw_rq(
        (PresentationContextRQ(1, CT, (IMPLICIT,)),),
        role_selections=(RoleSelection(CT, scu_role=True, scp_role=True),),
    )
    policy = replace(POLICY, can_act_as_scu=lambda uid: True, can_act_as_scp=frozenset())
    ac, neg = accept(rq, policy)
    assert ac.user_information.role_selections == (RoleSelection(CT, False, True),)
    assert (neg.accepted[1].we_are_scu, neg.accepted[1].we_are_scp) == (True, False)


def test_c_get_storage_role_accepted_when_we_can_send_c_store() -> None:
    rq = raw_rq(
        (PresentationContextRQ(1, CT, (IMPLICIT,)),),
        role_selections=(RoleSelection(CT, scu_role=False, scp_role=True),),
    )
    ac, neg = accept(rq, replace(POLICY, can_act_as_scu=frozenset({CT})))
    assert ac.user_information.role_selections == (RoleSelection(CT, False, True),)
    assert ac.presentation_contexts[0].result is ContextResult.ACCEPTANCE
    assert (neg.accepted[1].we_are_scu, neg.accepted[1].we_are_scp) == (True, False)


def test_context_left_without_any_role_is_rejected() -> None:
    rq = raw_rq(
        (PresentationContextRQ(1, CT, (IMPLICIT,)),),
        role_selections=(RoleSelection(CT, scu_role=False, scp_role=True),),
    )
    ac, neg = accept(rq)  # we cannot act as SCU for CT
    assert ac.user_information.role_selections == (RoleSelection(CT, False, False),)
    assert ac.presentation_contexts == (PresentationContextAC(1, ContextResult.USER_REJECTION),)
    assert neg.accepted == {}


def test_no_role_items_means_no_role_answers() -> None:
    ac, _ = accept(raw_rq((PresentationContextRQ(1, CT, (IMPLICIT,)),)))
    assert ac.user_information.role_selections == ()


def test_async_window_answered_only_when_proposed() -> None:
    ctx = (PresentationContextRQ(1, CT, (IMPLICIT,)),)
    ac, neg = accept(raw_rq(ctx))
    assert ac.user_information.async_ops_window is None and neg.async_window is None
    ac, neg = accept(raw_rq(ctx, async_ops_window=AsyncOpsWindow(0, 5)))
    assert ac.user_information.async_ops_window == AsyncOpsWindow(1, 1)
    assert neg.async_window == AsyncOpsWindow(1, 1)
    capped = replace(POLICY, support_async=True, async_limit=4)
    # Both AC fields are stated for the requestor (PS3.7 D.3.3.3): it may invoke 4 (0 asked
    # for unlimited: capped), and perform 1, as we invoke one sub-operation at a time.
    ac, _ = accept(raw_rq(ctx, async_ops_window=AsyncOpsWindow(0, 2)), capped)
    assert ac.user_information.async_ops_window == AsyncOpsWindow(max_invoked=4, max_performed=1)
    # Never more than it proposed (the AC's values are at most the RQ's).
    ac, _ = accept(raw_rq(ctx, async_ops_window=AsyncOpsWindow(3, 1)), capped)
    assert ac.user_information.async_ops_window == AsyncOpsWindow(max_invoked=3, max_performed=1)


@pytest.mark.parametrize(
    ("proposed", "answered", "window"),
    [
        (AsyncOpsWindow(256, 1), AsyncOpsWindow(8, 1), 8),  # granted 8 (as dcm4che answers)
        # An acceptor that lets us invoke 1 and perform 8: one at a time. Read the other way
        # round, this sent 8 at once to a peer that allowed one.
        (AsyncOpsWindow(256, 1), AsyncOpsWindow(1, 8), 1),
        (AsyncOpsWindow(16, 1), AsyncOpsWindow(0, 1), 16),  # unlimited: ours stands
        (AsyncOpsWindow(16, 1), AsyncOpsWindow(64, 1), 16),  # never more than proposed
        (AsyncOpsWindow(16, 1), None, 1),  # not answered: synchronous
        (None, AsyncOpsWindow(8, 8), 1),  # not proposed: an answer means nothing
    ],
)
def test_requestor_window_is_the_ac_invoked_field(
    proposed: AsyncOpsWindow | None, answered: AsyncOpsWindow | None, window: int
) -> None:
    assert requestor_window(proposed, answered) == window


def test_max_pdu_per_direction_with_zero() -> None:
    rq = raw_rq((PresentationContextRQ(1, CT, (IMPLICIT,)),), max_length=0)
    ac, neg = accept(rq, replace(POLICY, max_pdu=0))
    assert ac.user_information.max_length == 0
    assert (neg.max_pdu_to_peer, neg.max_pdu_from_peer) == (0, 0)
    ac, neg = accept(replace(rq, user_information=replace(rq.user_information, max_length=4096)))
    assert ac.user_information.max_length == POLICY.max_pdu
    assert (neg.max_pdu_to_peer, neg.max_pdu_from_peer) == (4096, POLICY.max_pdu)
    assert neg.peer_implementation_class_uid == "1.2.3.9"
    assert ac.user_information.implementation_class_uid == uids.IMPLEMENTATION_CLASS_UID


def _identity_rq(positive: bool) -> AssociateRQ:
    return raw_rq(
        (PresentationContextRQ(1, CT, (IMPLICIT,)),),
        user_identity_rq=UserIdentityRQ(
            UserIdentityType.USERNAME_AND_PASSCODE, positive, b"alice", b"secret"
        ),
    )


def test_identity_without_checker_is_ignored() -> None:
    ac, neg = accept(_identity_rq(True))
    assert ac.user_information.user_identity_ac is None
    assert neg.user_identity_response is None


def test_identity_rejected_by_checker() -> None:
    seen: list[UserIdentityRQ] = []

    def checker(identity: UserIdentityRQ) -> bool:
        seen.append(identity)
        return identity.secondary == b"right"

    policy = replace(POLICY, identity_checker=checker)
    # PS3.7 D.3.3.7: rejected-permanent, source ACSE service provider, no reason given
    assert negotiate_acceptor(_identity_rq(True), policy) == AssociateRJ(1, 2, 1)
    assert seen[0].primary == b"alice"


@pytest.mark.parametrize(
    ("verdict", "positive", "expected"),
    [
        (True, True, UserIdentityAC(b"")),
        (b"ticket", True, UserIdentityAC(b"ticket")),
        (b"ticket", False, None),  # no response asked for
        (True, False, None),
        (None, True, None),  # accepted unchecked: no positive response
    ],
)
def test_identity_accepted_response(
    verdict: bytes | bool | None, positive: bool, expected: UserIdentityAC | None
) -> None:
    policy = replace(POLICY, identity_checker=lambda identity: verdict)
    ac, neg = accept(_identity_rq(positive), policy)
    assert ac.user_information.user_identity_ac == expected
    assert neg.user_identity_response == (None if expected is None else expected.server_response)


def test_extended_negotiation_answered_only_for_supported_classes() -> None:
    calls: list[tuple[str, bytes]] = []

    def negotiator(sop_class: str, info: bytes) -> bytes | None:
        calls.append((sop_class, info))
        return b"\x00" if sop_class == CT else None

    rq = raw_rq(
        (
            PresentationContextRQ(1, CT, (IMPLICIT,)),
            PresentationContextRQ(3, MR, (IMPLICIT,)),
        ),
        extended_negotiations=(
            SOPClassExtendedNegotiation(CT, b"\x01\x01"),
            SOPClassExtendedNegotiation(MR, b"\x01"),
            SOPClassExtendedNegotiation(UNKNOWN_SOP, b"\x01"),  # no context: never asked
        ),
    )
    ac, neg = accept(rq, replace(POLICY, extended_negotiator=negotiator))
    assert calls == [(CT, b"\x01\x01"), (MR, b"\x01")]
    # our answer, not an echo of the proposal; MR's hook said None: no item
    assert ac.user_information.extended_negotiations == (SOPClassExtendedNegotiation(CT, b"\x00"),)
    assert dict(neg.extended_negotiation) == {CT: b"\x00"}
    ac, _ = accept(rq)  # no hook: nothing answered
    assert ac.user_information.extended_negotiations == ()


# ------------------------------------------------------------------------ both sides


def test_both_sides_agree_on_a_c_get_association() -> None:
    rq = rq_for(
        ProposedContext(uids.STUDY_ROOT_GET, (EXPLICIT, IMPLICIT)),
        ProposedContext(CT, (JPEG_BASELINE, EXPLICIT, IMPLICIT)),
        calling_ae="GETSCU",
        called_ae="OUR-SCP",
        roles={CT: (False, True)},
        max_pdu=0,
    )
    policy = replace(
        POLICY,
        transfer_syntax_chooser=default_chooser(
            {uids.STUDY_ROOT_GET: (EXPLICIT,), CT: (EXPLICIT,)}
        ),
        can_act_as_scu=frozenset({CT}),
        require_called_ae=True,
    )
    ac, theirs = accept(rq, policy)
    ours = negotiate_requestor(rq, ac)
    get_ours = ours.context_for(uids.STUDY_ROOT_GET)
    get_theirs = theirs.context_for(uids.STUDY_ROOT_GET, role="scp")
    assert get_ours is not None and get_theirs is not None
    assert (get_ours.context_id, get_ours.transfer_syntax) == (1, EXPLICIT)
    assert (get_theirs.context_id, get_theirs.transfer_syntax) == (1, EXPLICIT)
    get_ctx = ours.context_for(CT, role="scp")
    assert get_ctx is not None and get_ctx.transfer_syntax == EXPLICIT
    their_ctx = theirs.context_for(CT, role="scu")
    assert their_ctx is not None and their_ctx.context_id == get_ctx.context_id
    assert ours.context_for(CT) is None and theirs.context_for(CT, role="scp") is None
    assert ours.max_pdu_to_peer == theirs.max_pdu_from_peer == POLICY.max_pdu
    assert ours.max_pdu_from_peer == theirs.max_pdu_to_peer == 0
    assert (theirs.calling_ae, theirs.called_ae) == ("GETSCU", "OUR-SCP")


def test_sending_chooser_decides_where_the_requestor_proposes_the_scp_role() -> None:
    # C-GET's storage contexts: the requestor proposes to be SCP (with the SCU role too, as
    # pynetdicom's build_role(scu_role=True, scp_role=True) does), we send on them, so the
    # policy's sending chooser picks.
    policy = dataclasses.replace(
        POLICY,
        transfer_syntax_chooser=lambda abstract, offered: offered[-1],
        sending_chooser=lambda abstract, offered: offered[0],
        can_act_as_scu=frozenset({CT, MR}),
    )
    offered = (JPEG_BASELINE, EXPLICIT, IMPLICIT)
    rq = rq_for(
        ProposedContext(CT, offered),
        ProposedContext(MR, offered),
        ProposedContext(UNKNOWN_SOP, offered),
        roles={CT: (False, True), MR: (True, True)},
    )
    answer = negotiate_acceptor(rq, policy)
    assert not isinstance(answer, AssociateRJ)
    _, negotiated = answer
    chosen = {c.abstract_syntax: c.transfer_syntax for c in negotiated.accepted.values()}
    # SCP, alone or with SCU: sending (walkthrough 5: with both roles the receiving choice,
    # JPEG Lossless, left every uncompressed instance unsendable); no role item: receiving.
    assert chosen == {CT: JPEG_BASELINE, MR: JPEG_BASELINE, UNKNOWN_SOP: IMPLICIT}
