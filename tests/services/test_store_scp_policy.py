"""The acceptor policy of serve for storage contexts (issue 4: choice of transfer syntax)."""

from __future__ import annotations

from pathlib import Path

import pytest

from netdicom.core import uids
from netdicom.core.acse import ProposedContext, build_associate_rq, negotiate_acceptor
from netdicom.core.pdu import AssociateAC, ContextResult
from netdicom.services.serve import ServeApp, ServeConfig
from netdicom.services.store_scp import (
    choose_sending_syntax,
    choose_storage_syntax,
    is_storage_sop_class,
)
from tests.dicomfiles import CT

EXPLICIT = uids.EXPLICIT_VR_LE
IMPLICIT = uids.IMPLICIT_VR_LE
BIG = uids.EXPLICIT_VR_BE
DEFLATED = uids.DEFLATED_EXPLICIT_VR_LE
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"  # lossy
JPEG_LOSSLESS_SV1 = "1.2.840.10008.1.2.4.70"
JPEG_LS_LOSSLESS = "1.2.840.10008.1.2.4.80"
JPEG_LS_NEAR = "1.2.840.10008.1.2.4.81"  # lossy, despite "Lossless" in its name
J2K = "1.2.840.10008.1.2.4.91"  # lossy
RLE = "1.2.840.10008.1.2.5"
PRIVATE = "1.2.3.4.5.6.7.8"
XML = "1.2.840.10008.1.2.6.2"
REASON_4 = ContextResult.TRANSFER_SYNTAXES_NOT_SUPPORTED


@pytest.mark.parametrize(
    ("offered", "prefer", "chosen"),
    [
        ((IMPLICIT,), (), IMPLICIT),
        ((JPEG_BASELINE,), (), JPEG_BASELINE),  # offered alone: taken as is
        ((PRIVATE, JPEG_BASELINE), (), JPEG_BASELINE),  # the only one we can parse
        ((IMPLICIT, EXPLICIT), (), EXPLICIT),
        ((BIG, IMPLICIT), (), IMPLICIT),
        ((DEFLATED, BIG), (), DEFLATED),
        ((EXPLICIT, IMPLICIT, RLE), (), RLE),  # lossless compressed first
        ((EXPLICIT, JPEG_LS_LOSSLESS, JPEG_LOSSLESS_SV1), (), JPEG_LS_LOSSLESS),
        ((JPEG_BASELINE, EXPLICIT), (), EXPLICIT),  # never lossy beside uncompressed
        ((JPEG_LS_NEAR, IMPLICIT), (), IMPLICIT),
        ((J2K, JPEG_BASELINE), (), J2K),  # only lossy offered: the first
        ((JPEG_BASELINE, EXPLICIT), (JPEG_BASELINE,), JPEG_BASELINE),  # --prefer-ts overrides
        ((EXPLICIT, IMPLICIT, RLE), (IMPLICIT,), IMPLICIT),
        ((EXPLICIT,), (IMPLICIT,), EXPLICIT),  # a preference not offered is ignored
        ((PRIVATE,), (), REASON_4),
        ((XML,), (), REASON_4),
        ((), (), REASON_4),
    ],
)
def test_choice_of_transfer_syntax(
    offered: tuple[str, ...], prefer: tuple[str, ...], chosen: str | ContextResult
) -> None:
    assert choose_storage_syntax(offered, prefer) == chosen


JPEG = "1.2.840.10008.1.2.4.50"
GETSCU_XY = (JPEG, uids.EXPLICIT_VR_LE, uids.EXPLICIT_VR_BE, uids.IMPLICIT_VR_LE)


@pytest.mark.parametrize(
    ("held", "expected"),
    [
        # Nothing of the class held: uncompressed, though JPEG was offered first.
        ({}, uids.EXPLICIT_VR_LE),
        ({uids.IMPLICIT_VR_LE: 5}, uids.EXPLICIT_VR_LE),  # converted from implicit
        ({JPEG: 3}, JPEG),  # only JPEG held: JPEG carries them
        ({JPEG: 3, uids.EXPLICIT_VR_LE: 1, uids.EXPLICIT_VR_BE: 1}, JPEG),
        ({JPEG: 1, uids.DEFLATED_EXPLICIT_VR_LE: 2}, uids.EXPLICIT_VR_LE),  # deflated converts
        ({JPEG: 2, uids.EXPLICIT_VR_LE: 2}, uids.EXPLICIT_VR_LE),  # a tie: uncompressed
    ],
)
def test_sending_syntax_carries_most_of_what_is_held(held: dict[str, int], expected: str) -> None:
    assert choose_sending_syntax(GETSCU_XY, held) == expected


def test_sending_syntax_follows_the_requestor_between_equals() -> None:
    implicit_first = (uids.IMPLICIT_VR_LE, uids.EXPLICIT_VR_LE)
    assert choose_sending_syntax(implicit_first, {uids.EXPLICIT_VR_LE: 4}) == uids.IMPLICIT_VR_LE


def test_storage_sop_classes() -> None:
    assert is_storage_sop_class(CT, accept_unknown=False)
    assert is_storage_sop_class("1.2.3.4.5.6", accept_unknown=True)  # private: as storage
    assert not is_storage_sop_class("1.2.3.4.5.6", accept_unknown=False)
    # Known, but not storage: never accepted as such.
    for uid in (uids.STUDY_ROOT_FIND, "1.2.840.10008.1.20.1", EXPLICIT, "1.2.840.10008.1.3.10"):
        assert not is_storage_sop_class(uid, accept_unknown=True)


def negotiate(tmp_path: Path, **options: object) -> dict[int, str | ContextResult]:
    app = ServeApp(ServeConfig(directory=tmp_path, port=0, **options))  # type: ignore[arg-type]
    rq = build_associate_rq(
        calling_ae="SCU",
        called_ae="NETDICOM",
        max_pdu=16384,
        contexts=[
            ProposedContext(CT, (IMPLICIT, EXPLICIT)),  # 1
            ProposedContext("1.2.3.4.5.6", (IMPLICIT,)),  # 3: unknown SOP class
            ProposedContext(CT, (PRIVATE,)),  # 5
            ProposedContext(uids.VERIFICATION, (IMPLICIT, EXPLICIT)),  # 7
            ProposedContext(uids.PATIENT_ROOT_MOVE, (IMPLICIT,)),  # 9: Q/R MOVE (issue 6)
            ProposedContext(CT, (JPEG_BASELINE, EXPLICIT)),  # 11
        ],
    )
    answer = negotiate_acceptor(rq, app.policy)
    assert isinstance(answer, tuple) and isinstance(answer[0], AssociateAC)
    return {
        item.context_id: item.transfer_syntax
        if item.result is ContextResult.ACCEPTANCE
        else item.result
        for item in answer[0].presentation_contexts
    }


def test_serve_answers_every_context(tmp_path: Path) -> None:
    assert negotiate(tmp_path) == {
        1: EXPLICIT,
        3: IMPLICIT,
        5: REASON_4,
        7: EXPLICIT,
        9: IMPLICIT,
        11: EXPLICIT,
    }


def test_no_unknown_and_prefer(tmp_path: Path) -> None:
    answers = negotiate(
        tmp_path, accept_unknown_sop_classes=False, prefer_transfer_syntaxes=(JPEG_BASELINE,)
    )
    assert answers[3] is ContextResult.ABSTRACT_SYNTAX_NOT_SUPPORTED
    assert answers[11] == JPEG_BASELINE
    assert answers[1] == EXPLICIT
