"""A-ABORT and A-ASSOCIATE-AC problems in words: each fact said once (PS3.8 Table 9-26)."""

from __future__ import annotations

import pytest

from netdicom.core.acse import ProposedContext, build_associate_rq, negotiate_requestor
from netdicom.core.errors import RemoteProtocolError
from netdicom.core.pdu import (
    AssociateAC,
    ContextResult,
    PresentationContextAC,
    UserInformation,
)
from netdicom.core.rejections import describe_abort

IMPLICIT = "1.2.840.10008.1.2"


@pytest.mark.parametrize(
    ("source", "reason", "words"),
    [
        (0, 0, "the peer's service user sent A-ABORT"),
        (2, 2, "the peer's provider sent A-ABORT (reason: unexpected PDU)"),
        (2, 9, "the peer's provider sent A-ABORT (reason: 9, which PS3.8 does not define)"),
        (
            255,
            255,
            "the peer sent an A-ABORT with source 255, which PS3.8 Table 9-26 does not define "
            "(reason 255)",
        ),
    ],
)
def test_describe_abort_follows_a_message_that_says_aborted(
    source: int, reason: int, words: str
) -> None:
    assert describe_abort(source, reason) == words
    assert "aborted" not in words


def test_classify_adds_the_abort_pdu_once() -> None:
    from netdicom.cli.exit_codes import ExitCode, classify
    from netdicom.core.errors import AssociationAborted

    exc = AssociationAborted("association with h:1 aborted (provider)", source=255, reason=255)
    code, message, _ = classify(exc)
    assert code is ExitCode.ABORTED
    assert message == (
        "association with h:1 aborted (provider): the peer sent an A-ABORT with source 255, "
        "which PS3.8 Table 9-26 does not define (reason 255)"
    )


def test_an_empty_accepted_transfer_syntax_is_named() -> None:
    rq = build_associate_rq(
        calling_ae="A",
        called_ae="B",
        contexts=[ProposedContext("1.2.840.10008.1.1", (IMPLICIT,))],
        max_pdu=16384,
    )
    ac = AssociateAC(
        "B",
        "A",
        (PresentationContextAC(1, ContextResult.ACCEPTANCE, ""),),
        UserInformation(max_length=16384),
    )
    with pytest.raises(RemoteProtocolError) as info:
        negotiate_requestor(rq, ac)
    assert str(info.value) == (
        "A-ASSOCIATE-AC accepts presentation context 1 with an empty transfer syntax UID, "
        "which was not proposed for it"
    )
