"""Grouped commits of the store hook (Index.add_deferred / flush): rows are visible to queries
(which use a connection of their own) as soon as they are asked for, a failing insert undoes
only itself, and nothing pending is lost at close."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from netdicom.archive.index import Index, InstanceSummary, Query
from netdicom.archive.matching import Level, Model
from netdicom.archive.rebuild import read_summary
from tests.dicomfiles import make_dataset, write_instance


def _summaries(root: Path, count: int) -> list[object]:
    out = []
    for n in range(count):
        ds = make_dataset(patient_id=f"P{n}", study_uid=f"1.{n}", sop_instance_uid=f"1.{n}.1.1")
        write_instance(root / f"f{n}.dcm", ds)
        out.append(read_summary(root, f"f{n}.dcm"))
    return out


def _studies(index: Index) -> int:
    query = Query(Model.STUDY_ROOT, Level.STUDY, (), frozenset(), False)
    return sum(len(batch) for batch in index.find(query))


def _committed(index: Index) -> int:
    conn = sqlite3.connect(index.path)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM instance").fetchone()[0])
    finally:
        conn.close()


def test_deferred_rows_are_committed_by_flush_and_before_a_query(tmp_path: Path) -> None:
    index = Index(tmp_path)
    index.open()
    summaries = _summaries(tmp_path, 3)
    for summary in summaries:
        index.add_deferred(summary)  # type: ignore[arg-type]
    assert index.pending == 3
    assert _committed(index) == 0  # another connection sees nothing yet
    assert _studies(index) == 3  # a query flushes first
    assert index.pending == 0 and _committed(index) == 3
    index.close()


def test_a_failing_insert_undoes_only_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = Index(tmp_path)
    index.open()
    good, bad, later = _summaries(tmp_path, 3)
    index.add_deferred(good)  # type: ignore[arg-type]
    original = Index._insert

    def broken(self: Index, db: sqlite3.Connection, summary: object) -> None:
        original(self, db, summary)  # type: ignore[arg-type]
        raise RuntimeError("disk trouble")

    monkeypatch.setattr(Index, "_insert", broken)
    with pytest.raises(RuntimeError):
        index.add_deferred(bad)  # type: ignore[arg-type]
    monkeypatch.setattr(Index, "_insert", original)
    index.add_deferred(later)  # type: ignore[arg-type]
    index.flush()
    assert _committed(index) == 2
    assert sorted(index.sop_instance_paths(["1.0.1.1", "1.1.1.1", "1.2.1.1"])) == [
        "1.0.1.1",
        "1.2.1.1",
    ]
    index.close()


def test_close_commits_what_is_pending(tmp_path: Path) -> None:
    index = Index(tmp_path)
    index.open()
    for summary in _summaries(tmp_path, 2):
        index.add_deferred(summary)  # type: ignore[arg-type]
    index.close()
    again = Index(tmp_path)
    assert again.open() == "ok"
    assert again.counts()["instance"] == 2
    again.close()


def test_queued_instances_are_added_before_any_read(tmp_path: Path) -> None:
    # serve's store path queues (add_later) and answers; every read must see the instance.
    index = Index(tmp_path)
    index.open()
    summaries = _summaries(tmp_path, 4)
    built: list[int] = []

    def maker(n: int) -> Callable[[], InstanceSummary]:
        def make() -> InstanceSummary:
            built.append(n)
            return summaries[n]  # type: ignore[return-value]

        return make

    index.add_later(maker(0))
    assert built == [] and index.pending == 1  # nothing done on the store path
    assert index.counts()["instance"] == 1
    index.add_later(maker(1))
    assert index.sop_instance_paths(["1.1.1.1"]) == {"1.1.1.1": "f1.dcm"}
    index.add_later(maker(2))
    assert "f2.dcm" in index.files()
    index.add_later(maker(3))
    assert _studies(index) == 4 and _committed(index) == 4  # a query adds and commits
    assert built == [0, 1, 2, 3]
    index.close()


def test_queued_keep_existing_and_failures(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    index = Index(tmp_path)
    index.open()
    first, second = _summaries(tmp_path, 2)
    index.add(first)  # type: ignore[arg-type]
    # The same SOP instance again, kept as a second file: not indexed over the first.
    again = type(first)("copy.dcm", 1, 1, first.transfer_syntax, first.values)  # type: ignore[attr-defined]

    def broken() -> InstanceSummary:
        raise OSError("file vanished")

    index.add_later(lambda: again, keep_existing=True)
    index.add_later(broken)
    index.add_later(lambda: second)  # type: ignore[arg-type,return-value]
    index.flush()
    assert index.sop_instance_paths(["1.0.1.1", "1.1.1.1"]) == {
        "1.0.1.1": "f0.dcm",
        "1.1.1.1": "f1.dcm",
    }
    assert "file vanished" in caplog.text  # logged, skipped, the others added
    index.close()


def test_close_adds_what_is_queued(tmp_path: Path) -> None:
    index = Index(tmp_path)
    index.open()
    (summary,) = _summaries(tmp_path, 1)
    index.add_later(lambda: summary)  # type: ignore[arg-type,return-value]
    index.close()
    assert _committed(index) == 1


@pytest.mark.parametrize("earlier", [False, True])
def test_a_failing_insert_in_a_queued_batch_undoes_only_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, earlier: bool
) -> None:
    index = Index(tmp_path)
    index.open()
    first, bad, last, before = _summaries(tmp_path, 4)
    if earlier:
        index.add_deferred(before)  # type: ignore[arg-type]  # a transaction already open
    original = Index._insert

    def picky(self: Index, db: sqlite3.Connection, summary: InstanceSummary) -> None:
        original(self, db, summary)
        if summary.path == "f1.dcm":
            raise RuntimeError("disk trouble")  # after its rows were written

    monkeypatch.setattr(Index, "_insert", picky)
    for summary in (first, bad, last):
        index.add_later(lambda summary=summary: summary)  # type: ignore[misc]
    index.flush()
    monkeypatch.setattr(Index, "_insert", original)
    expected = {"1.0.1.1", "1.2.1.1"} | ({"1.3.1.1"} if earlier else set())
    found = index.sop_instance_paths(["1.0.1.1", "1.1.1.1", "1.2.1.1", "1.3.1.1"])
    assert set(found) == expected
    assert _committed(index) == len(expected)
    assert index.counts()["instance"] == len(expected)  # no half-added instance
    index.close()
