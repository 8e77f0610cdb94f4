"""Grouped commits of the store hook (Index.add_deferred / flush): rows are visible to queries
(which use a connection of their own) as soon as they are asked for, a failing insert undoes
only itself, and nothing pending is lost at close."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from netdicom.archive.index import Index, Query
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
