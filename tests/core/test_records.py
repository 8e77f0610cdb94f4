"""@frozen behaves as @dataclass(frozen=True, slots=True): checked side by side."""

from __future__ import annotations

import dataclasses
import pickle
from dataclasses import dataclass, field

import pytest

from netdicom.core.records import frozen


@frozen
class Point:
    x: int
    y: int = 0
    note: str = field(default="", compare=False, repr=False)
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Reference:
    x: int
    y: int = 0
    note: str = field(default="", compare=False, repr=False)
    tags: tuple[str, ...] = ()


@frozen(kw_only=True)
class Options:
    name: str
    level: int = 1


@frozen
class Empty:
    pass


@frozen
class Node:
    children: list[object] = field(default_factory=list, hash=False)


def test_same_equality_hash_and_repr_as_a_frozen_dataclass() -> None:
    for args in [(1,), (1, 2), (1, 2, "n", ("a",))]:
        ours, theirs = Point(*args), Reference(*args)
        assert repr(ours) == repr(theirs).replace("Reference", "Point")
        assert hash(ours) == hash(theirs)
    assert Point(1, 2, "a") == Point(1, 2, "b")  # compare=False is left out
    assert Point(1, 2) != Point(2, 1)
    assert Point(1) != Reference(1)  # another class is never equal
    assert Point.__eq__(Point(1), (1, 0, ())) is NotImplemented
    assert len({Point(1, 2, "a"), Point(1, 2, "b"), Point(3)}) == 2
    assert Empty() == Empty() and hash(Empty()) == hash(Empty()) and repr(Empty()) == "Empty()"


def test_frozen_slotted_and_a_real_dataclass() -> None:
    p = Point(1, 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.x = 3  # type: ignore[misc]
    with pytest.raises((AttributeError, TypeError)):
        p.other = 1  # type: ignore[attr-defined]
    assert not hasattr(p, "__dict__")
    assert [f.name for f in dataclasses.fields(p)] == ["x", "y", "note", "tags"]
    assert dataclasses.replace(p, y=5) == Point(1, 5)
    assert dataclasses.asdict(p) == {"x": 1, "y": 2, "note": "", "tags": ()}
    assert pickle.loads(pickle.dumps(p)) == p
    match p:
        case Point(1, y):
            assert y == 2
        case _:
            pytest.fail("positional pattern did not match")


def test_keyword_only_and_unhashable_fields() -> None:
    with pytest.raises(TypeError):
        Options("x")  # type: ignore[misc]
    assert Options(name="x") == Options(name="x", level=1)
    n = Node([1])
    assert n == Node([1]) and hash(n) == hash(Node([2]))  # hash=False: left out of the hash
    n.children.append(n)
    assert repr(n) == "Node(children=[1, ...])"  # a cycle is shown, not recursed into


def test_methods_written_in_the_class_body_stay() -> None:
    @frozen
    class Named:
        name: str

        def __repr__(self) -> str:
            return f"<{self.name}>"

    assert repr(Named("a")) == "<a>"
    assert Named("a") == Named("a") and hash(Named("a")) == hash(Named("a"))
