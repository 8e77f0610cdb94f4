"""Status categories (PS3.7 Annex C) and names (PS3.7 Annex C, PS3.4 B.2.3, C.4)."""

from __future__ import annotations

import pytest

from netdicom.core.dimse import status
from netdicom.core.dimse.status import StatusCategory, category, status_name

S, W, F, C, P, U = (
    StatusCategory.SUCCESS,
    StatusCategory.WARNING,
    StatusCategory.FAILURE,
    StatusCategory.CANCEL,
    StatusCategory.PENDING,
    StatusCategory.UNKNOWN,
)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (0x0000, S),
        (0x0001, W),
        (0x0107, W),
        (0x0116, W),
        (0xB000, W),
        (0xB006, W),
        (0xB007, W),
        (0xBFFF, W),
        (0x0105, F),
        (0x0106, F),
        (0x0110, F),
        (0x0111, F),
        (0x0117, F),
        (0x0122, F),
        (0x0124, F),
        (0x0100, F),
        (0x01FF, F),
        (0x0210, F),
        (0x0213, F),
        (0x02FF, F),
        (0xA000, F),
        (0xA700, F),
        (0xA701, F),
        (0xA702, F),
        (0xA801, F),
        (0xA900, F),
        (0xAA04, F),
        (0xAFFF, F),
        (0xC000, F),
        (0xC123, F),
        (0xCFFF, F),
        (0xFE00, C),
        (0xFF00, P),
        (0xFF01, P),
        (0x0002, U),
        (0x00FF, U),
        (0x0300, U),
        (0x9FFF, U),
        (0xD000, U),
        (0xFE01, U),
        (0xFF02, U),
        (0xFFFF, U),
    ],
)
def test_category(code: int, expected: StatusCategory) -> None:
    assert category(code) is expected


GENERAL = [
    (0x0000, "Success"),
    (0x0001, "Warning: requested optional attributes are not supported"),
    (0x0105, "Failure: no such attribute"),
    (0x0106, "Failure: invalid attribute value"),
    (0x0107, "Warning: attribute list error"),
    (0x0110, "Failure: processing failure"),
    (0x0111, "Failure: duplicate SOP instance"),
    (0x0112, "Failure: no such SOP instance"),
    (0x0113, "Failure: no such event type"),
    (0x0114, "Failure: no such argument"),
    (0x0115, "Failure: invalid argument value"),
    (0x0116, "Warning: attribute value out of range"),
    (0x0117, "Failure: invalid SOP instance"),
    (0x0118, "Failure: no such SOP class"),
    (0x0119, "Failure: class-instance conflict"),
    (0x0120, "Failure: missing attribute"),
    (0x0121, "Failure: missing attribute value"),
    (0x0122, "Refused: SOP class not supported"),
    (0x0123, "Failure: no such action"),
    (0x0124, "Refused: not authorized"),
    (0x0210, "Failure: duplicate invocation"),
    (0x0211, "Failure: unrecognized operation"),
    (0x0212, "Failure: mistyped argument"),
    (0x0213, "Failure: resource limitation"),
    (0xFE00, "Cancel"),
]


@pytest.mark.parametrize(("code", "name"), GENERAL)
def test_general_names(code: int, name: str) -> None:
    assert status_name(code) == name
    assert status_name(code, "echo") == name


@pytest.mark.parametrize(
    ("code", "name"),
    [
        (0xA700, "Refused: out of resources"),
        (0xA7FF, "Refused: out of resources"),
        (0xA900, "Error: data set does not match SOP class"),
        (0xA912, "Error: data set does not match SOP class"),
        (0xC000, "Error: cannot understand"),
        (0xCABC, "Error: cannot understand"),
        (0xB000, "Warning: coercion of data elements"),
        (0xB006, "Warning: elements discarded"),
        (0xB007, "Warning: data set does not match SOP class"),
        (0x0000, "Success"),
        (0x0122, "Refused: SOP class not supported"),
        (0x0117, "Failure: invalid SOP instance"),
    ],
)
def test_store_names(code: int, name: str) -> None:
    assert status_name(code, "store") == name


@pytest.mark.parametrize(
    ("code", "name"),
    [
        (0xA700, "Refused: out of resources"),
        (0xA900, "Failed: identifier does not match SOP class"),
        (0xC000, "Failed: unable to process"),
        (0xC512, "Failed: unable to process"),
        (0xFE00, "Cancel: matching terminated due to cancel request"),
        (0x0000, "Success: matching is complete"),
        (0xFF00, "Pending: matches are continuing"),
        (
            0xFF01,
            "Pending: matches are continuing, one or more optional keys were not supported",
        ),
        (0x0122, "Refused: SOP class not supported"),
    ],
)
def test_find_names(code: int, name: str) -> None:
    assert status_name(code, "find") == name


RETRIEVE_COMMON = [
    (0xA701, "Refused: out of resources, unable to calculate number of matches"),
    (0xA702, "Refused: out of resources, unable to perform sub-operations"),
    (0xA900, "Failed: identifier does not match SOP class"),
    (0xAA00, "Failed: none of the frames requested were found in the SOP instance"),
    (0xAA01, "Failed: unable to create new object for this SOP class"),
    (0xAA02, "Failed: unable to extract frames"),
    (0xAA03, "Failed: time-based request received for a non-time-based original SOP instance"),
    (0xAA04, "Failed: invalid request"),
    (0xC000, "Failed: unable to process"),
    (0xCFFF, "Failed: unable to process"),
    (0xFE00, "Cancel: sub-operations terminated due to cancel indication"),
    (0x0000, "Success: sub-operations complete, no failures"),
    (0xFF00, "Pending: sub-operations are continuing"),
    (0x0122, "Refused: SOP class not supported"),
    (0x0124, "Refused: not authorized"),
]


@pytest.mark.parametrize(("code", "name"), RETRIEVE_COMMON)
@pytest.mark.parametrize("service", ["get", "move"])
def test_retrieve_names(service: str, code: int, name: str) -> None:
    assert status_name(code, service) == name


def test_move_and_get_differ_where_the_standard_does() -> None:
    assert status_name(0xA801, "move") == "Refused: move destination unknown"
    assert status_name(0xA801, "get") == "Failure"
    assert status_name(0xB000, "move") == "Warning: sub-operations complete, one or more failures"
    assert (
        status_name(0xB000, "get")
        == "Warning: sub-operations complete, one or more failures or warnings"
    )


def test_range_names_are_service_specific() -> None:
    # A7xx is a store range only; Q/R FIND defines exactly 0xA700.
    assert status_name(0xA7FE, "find") == "Failure"
    assert status_name(0xC001) == "Failure"
    assert status_name(0xFF00) == "Pending"
    assert status_name(0xB123, "store") == "Warning"
    assert status_name(0x1234, "move") == "Unknown status"


def test_unknown_service_is_an_error() -> None:
    with pytest.raises(ValueError):
        status_name(0, "print")


def test_named_constants() -> None:
    assert status.SUCCESS == 0x0000
    assert status.PENDING == 0xFF00
    assert status.PENDING_WARNING == 0xFF01
    assert status.CANCEL == 0xFE00
    assert status.SUBOPERATIONS_WARNING == 0xB000
    assert status.MOVE_DESTINATION_UNKNOWN == 0xA801
    assert status.OUT_OF_RESOURCES_SUBOPERATIONS == 0xA702
    assert status.UNABLE_TO_PROCESS == 0xC000
    assert status.SOP_CLASS_NOT_SUPPORTED == 0x0122
    assert status.UNRECOGNIZED_OPERATION == 0x0211
    assert category(status.ELEMENTS_DISCARDED) is StatusCategory.WARNING
