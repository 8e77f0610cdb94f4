"""archive.group_commit: small instances created, synced and named in groups on one thread,
each answered with its own outcome, nothing left behind."""

from __future__ import annotations

import asyncio
import errno
import os
import threading
from pathlib import Path, PurePosixPath

from netdicom.archive.group_commit import GroupCommit
from netdicom.archive.layout import UnsafePath
from netdicom.archive.writer import Archive, DeferredFile, Outcome, Placed
from tests.faulty_disk import fails_on_write
from tests.leftovers import temp_files


def _deferred(archive: Archive, body: bytes) -> DeferredFile:
    file = DeferredFile(archive, b"HEAD")
    file.write(body)
    return file


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.dcm"))


def test_instances_queued_together_share_groups(tmp_path: Path) -> None:
    archive = Archive(tmp_path)
    committer = GroupCommit(archive)
    threads: set[str] = set()

    def after(placed: Placed) -> Placed:
        threads.add(threading.current_thread().name)
        return placed

    async def main() -> list[Placed]:
        futures = [
            committer.commit(
                _deferred(archive, b"%d" % n), PurePosixPath(f"s{n % 3}/{n}.dcm"), after
            )
            for n in range(100)
        ]
        return list(await asyncio.gather(*futures))

    placed = asyncio.run(main())
    assert [p.path for p in placed] == [tmp_path / f"s{n % 3}/{n}.dcm" for n in range(100)]
    assert all(p.outcome is Outcome.STORED for p in placed)
    assert (tmp_path / "s1/7.dcm").read_bytes() == b"HEAD7"
    # Queued while the committer was busy: far fewer groups than instances (64 at most each).
    assert 2 <= committer.groups <= 10
    assert threads == {next(iter(threads))} and next(iter(threads)).startswith("netdicom-commit")
    assert temp_files(tmp_path) == []


def test_each_instance_gets_its_own_outcome(tmp_path: Path) -> None:
    # The fourth write is the second file's body (header, body, header, body...).
    archive = Archive(tmp_path, file_write=fails_on_write(4))
    committer = GroupCommit(archive)

    def after(placed: Placed) -> str:
        if placed.path.name == "3.dcm":
            raise RuntimeError("index unavailable")
        return placed.path.name

    async def main() -> list[object]:
        relatives = ["a/1.dcm", "a/2.dcm", "../x.dcm", "a/3.dcm", "a/4.dcm"]
        futures = [
            committer.commit(_deferred(archive, b"B"), PurePosixPath(r), after) for r in relatives
        ]
        return list(await asyncio.gather(*futures, return_exceptions=True))

    results = asyncio.run(main())
    assert results[0] == "1.dcm" and results[4] == "4.dcm"
    assert isinstance(results[1], OSError) and results[1].errno == errno.ENOSPC
    assert isinstance(results[2], UnsafePath)
    assert isinstance(results[3], RuntimeError)  # placed, but what `after` raised
    assert _files(tmp_path) == ["a/1.dcm", "a/3.dcm", "a/4.dcm"]
    assert temp_files(tmp_path) == []


def test_an_instance_whose_waiter_is_cancelled_is_still_stored(tmp_path: Path) -> None:
    archive = Archive(tmp_path)
    committer = GroupCommit(archive)
    gate = threading.Event()

    def after(placed: Placed) -> Placed:
        gate.wait(5)
        return placed

    async def main() -> None:
        future = committer.commit(_deferred(archive, b"B"), PurePosixPath("c/1.dcm"), after)
        future.cancel()
        gate.set()
        # A later instance is answered normally: the cancelled one did not break the thread.
        placed = await committer.commit(
            _deferred(archive, b"C"), PurePosixPath("c/2.dcm"), lambda p: p
        )
        assert placed.outcome is Outcome.STORED

    asyncio.run(main())
    assert _files(tmp_path) == ["c/1.dcm", "c/2.dcm"]


def test_a_lone_instance_is_committed_at_once(tmp_path: Path) -> None:
    # No timer: an instance reaching an idle committer is its own group.
    archive = Archive(tmp_path)
    committer = GroupCommit(archive)

    async def main() -> None:
        for n in range(3):
            placed = await asyncio.wait_for(
                committer.commit(_deferred(archive, b"B"), PurePosixPath(f"{n}.dcm"), lambda p: p),
                5,
            )
            assert placed.path.exists()

    asyncio.run(main())
    assert committer.groups == 3


def test_a_group_failing_unexpectedly_answers_every_instance_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    def buggy(fd: int, data: memoryview) -> int:
        if bytes(data) == b"BUG":
            raise RuntimeError("a bug, not an I/O error")
        return os.write(fd, data)

    archive = Archive(tmp_path, file_write=buggy)
    committer = GroupCommit(archive)
    written = archive.begin(b"HEAD")  # as the spool hands one over: written, not synced
    written.write(b"W")

    entered, gate = threading.Event(), threading.Event()

    def held(placed: Placed) -> Placed:
        entered.set()
        gate.wait(5)  # keeps the committer busy while the next three queue up as one group
        return placed

    async def main() -> list[object]:
        first = committer.commit(_deferred(archive, b"0"), PurePosixPath("0.dcm"), held)
        assert await asyncio.to_thread(entered.wait, 5)
        futures = [
            committer.commit(_deferred(archive, b"A"), PurePosixPath("a.dcm"), lambda p: p),
            committer.commit(written, PurePosixPath("w.dcm"), lambda p: p),
            committer.commit(_deferred(archive, b"BUG"), PurePosixPath("b.dcm"), lambda p: p),
        ]
        gate.set()
        await first
        return list(await asyncio.gather(*futures, return_exceptions=True))

    results = asyncio.run(main())
    assert all(isinstance(r, RuntimeError) for r in results), results
    assert _files(tmp_path) == ["0.dcm"] and temp_files(tmp_path) == []
