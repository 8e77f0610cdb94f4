"""Message ID allocation: 1..65535, wrap-around, outstanding IDs skipped (PS3.7 Annex E)."""

from __future__ import annotations

import pytest

from netdicom.core.dimse.message_ids import MAX_MESSAGE_ID, MessageIdAllocator
from netdicom.core.errors import LocalProtocolError


def test_counts_up_from_one() -> None:
    ids = MessageIdAllocator()
    assert [ids.next() for _ in range(3)] == [1, 2, 3]
    assert ids.outstanding == frozenset({1, 2, 3})


def test_released_ids_are_not_reused_until_wrap() -> None:
    ids = MessageIdAllocator()
    first = ids.next()
    ids.release(first)
    assert not ids.is_outstanding(first)
    assert ids.next() == 2


def test_wraps_after_65535_to_one_never_zero() -> None:
    ids = MessageIdAllocator(first=65534)
    assert ids.next() == 65534
    assert ids.next() == 65535
    assert ids.next() == 1
    assert MAX_MESSAGE_ID == 65535


def test_wrap_skips_outstanding_ids() -> None:
    ids = MessageIdAllocator()
    one, two = ids.next(), ids.next()  # 1 and 2 stay outstanding
    for _ in range(3, MAX_MESSAGE_ID + 1):
        ids.release(ids.next())
    assert (one, two) == (1, 2)
    assert ids.next() == 3  # 65535 was last; 1 and 2 are still in use
    ids.release(one)
    for _ in range(4, MAX_MESSAGE_ID + 1):
        ids.release(ids.next())
    assert ids.next() == 1  # freed meanwhile: used again


def test_all_outstanding_raises() -> None:
    ids = MessageIdAllocator()
    for _ in range(MAX_MESSAGE_ID):
        ids.next()
    with pytest.raises(LocalProtocolError):
        ids.next()
    ids.release(40000)
    assert ids.next() == 40000


def test_double_release_is_harmless() -> None:
    ids = MessageIdAllocator()
    n = ids.next()
    ids.release(n)
    ids.release(n)
    ids.release(999)
    assert ids.outstanding == frozenset()


@pytest.mark.parametrize("first", [0, 65536])
def test_first_must_be_a_valid_id(first: int) -> None:
    with pytest.raises(LocalProtocolError):
        MessageIdAllocator(first=first)
