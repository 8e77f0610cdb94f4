"""archive.spool: the file work of a durable store on worker threads, in order, and nothing
left behind whatever goes wrong."""

from __future__ import annotations

import asyncio
import errno
import os
import threading
import time
from pathlib import Path, PurePosixPath

import pytest

from netdicom.archive.spool import Spool, SpooledFile
from netdicom.archive.writer import Archive, Outcome, Placed
from tests.faulty_disk import fails_on_write
from tests.leftovers import temp_files


def _same(placed: Placed) -> Placed:
    return placed


def leftovers(root: Path) -> list[str]:
    return temp_files(root)


def test_pieces_are_written_in_order_and_the_file_placed(tmp_path: Path) -> None:
    archive = Archive(tmp_path)
    spool = Spool()
    pieces = [bytes([n]) * size for n, size in enumerate((10, 300_000, 1 << 20, 7, 2_000_000))]

    async def main() -> None:
        spooled = SpooledFile(spool, archive, b"HEAD")
        for piece in pieces:
            await spooled.write(memoryview(piece))
        assert spooled.size == 4 + sum(map(len, pieces))
        placed = await spooled.commit(PurePosixPath("a/b.dcm"), _same)
        assert placed.outcome is Outcome.STORED

    asyncio.run(main())
    spool.close()
    assert (tmp_path / "a" / "b.dcm").read_bytes() == b"HEAD" + b"".join(pieces)
    assert leftovers(tmp_path) == []


def test_the_file_work_runs_off_the_calling_thread(tmp_path: Path) -> None:
    threads: set[int] = set()

    def write(fd: int, data: memoryview) -> int:
        threads.add(threading.get_ident())
        return os.write(fd, data)

    archive = Archive(tmp_path, file_write=write)

    async def main() -> None:
        spooled = SpooledFile(Spool(), archive, b"HEAD")
        await spooled.write(b"x" * (3 << 20))
        await spooled.commit(PurePosixPath("c.dcm"), _same)

    asyncio.run(main())
    assert threads and threading.get_ident() not in threads


def test_a_failed_write_is_reported_and_leaves_nothing(tmp_path: Path) -> None:
    archive = Archive(tmp_path, file_write=fails_on_write(3))

    async def main() -> None:
        spooled = SpooledFile(Spool(), archive, b"HEAD")
        for _ in range(6):
            await spooled.write(b"y" * (512 << 10))  # handed over in batches
        with pytest.raises(OSError) as caught:
            await spooled.commit(PurePosixPath("d.dcm"), _same)
        assert caught.value.errno == errno.ENOSPC
        assert isinstance(spooled.error, OSError)

    asyncio.run(main())
    assert leftovers(tmp_path) == [] and not (tmp_path / "d.dcm").exists()


@pytest.mark.parametrize("blocking", [True, False])
def test_discard_leaves_nothing(tmp_path: Path, blocking: bool) -> None:
    def slow(fd: int, data: memoryview) -> int:
        time.sleep(0.01)
        return os.write(fd, data)

    archive = Archive(tmp_path, file_write=slow)

    async def main() -> None:
        spooled = SpooledFile(Spool(), archive, b"HEAD")
        for _ in range(4):
            await spooled.write(b"z" * (300 << 10))
        if blocking:
            spooled.discard_now()
        else:
            await spooled.discard()
        assert leftovers(tmp_path) == []

    asyncio.run(main())


def test_bytes_in_flight_are_bounded(tmp_path: Path) -> None:
    gate = threading.Event()
    written = 0

    def stalled(fd: int, data: memoryview) -> int:
        nonlocal written
        gate.wait(5)
        written += len(data)
        return os.write(fd, data)

    archive = Archive(tmp_path, fsync=False, file_write=stalled)

    async def main() -> None:
        spooled = SpooledFile(Spool(), archive, b"HEAD")
        writer = asyncio.create_task(_write_many(spooled, 40, 256 << 10))  # 10 MiB
        await asyncio.sleep(0.3)
        # The disk does not move: the writer waits with at most a few MiB handed over.
        assert not writer.done()
        gate.set()
        await writer
        await spooled.commit(PurePosixPath("e.dcm"), _same)

    asyncio.run(main())
    assert (tmp_path / "e.dcm").stat().st_size == 4 + 40 * (256 << 10)


async def _write_many(spooled: SpooledFile, count: int, size: int) -> None:
    for _ in range(count):
        await spooled.write(b"w" * size)


def test_bytes_in_flight_are_bounded_over_all_files(tmp_path: Path) -> None:
    # Several instances finished by the peer (an operations window) and committed in the
    # background while the disk is stalled: the spool's limit holds over all of them.
    gate = threading.Event()

    def stalled(fd: int, data: memoryview) -> int:
        gate.wait(5)
        return os.write(fd, data)

    archive = Archive(tmp_path, fsync=False, file_write=stalled)
    spool = Spool(in_flight_limit=3 << 20)

    async def one(number: int) -> Placed:
        spooled = SpooledFile(spool, archive, b"HEAD")
        await _write_many(spooled, 12, 256 << 10)  # 3 MiB each
        return await spooled.commit(PurePosixPath(f"{number}.dcm"), _same)

    async def main() -> None:
        tasks = [asyncio.create_task(one(n)) for n in range(6)]  # 18 MiB in all
        await asyncio.sleep(0.3)
        assert not any(task.done() for task in tasks)
        # The limit, plus at most one batch per file handed over before it looked.
        assert spool.peak_in_flight <= (3 << 20) + 6 * ((1 << 20) + (256 << 10) + 4)
        gate.set()
        placed = await asyncio.gather(*tasks)
        assert all(p.path.stat().st_size == 4 + (3 << 20) for p in placed)
        assert spool.in_flight == 0

    asyncio.run(main())


def test_finish_hands_over_the_written_file(tmp_path: Path) -> None:
    archive = Archive(tmp_path)

    async def main() -> None:
        spooled = SpooledFile(Spool(), archive, b"HEAD")
        await _write_many(spooled, 6, 256 << 10)  # one batch handed over before finish
        pending = await spooled.finish()
        assert pending.size == 4 + 6 * (256 << 10)
        placed = pending.commit(PurePosixPath("f/x.dcm"))
        assert placed.path.read_bytes() == b"HEAD" + b"w" * (6 * (256 << 10))

    asyncio.run(main())
    assert leftovers(tmp_path) == []


def test_finish_raises_a_failed_write_and_leaves_nothing(tmp_path: Path) -> None:
    def full_disk(fd: int, data: memoryview) -> int:
        if len(data) > 4:
            raise OSError(errno.ENOSPC, "No space left on device")
        return os.write(fd, data)

    archive = Archive(tmp_path, file_write=full_disk)

    async def main() -> None:
        spooled = SpooledFile(Spool(), archive, b"HEAD")
        await spooled.write(b"x" * 100)
        with pytest.raises(OSError) as caught:
            await spooled.finish()
        assert caught.value.errno == errno.ENOSPC

    asyncio.run(main())
    assert leftovers(tmp_path) == []


def test_finish_cancelled_leaves_nothing(tmp_path: Path) -> None:
    gate = threading.Event()

    def stalled(fd: int, data: memoryview) -> int:
        gate.wait(5)
        return os.write(fd, data)

    archive = Archive(tmp_path, file_write=stalled)

    async def main() -> None:
        spooled = SpooledFile(Spool(), archive, b"HEAD")
        await spooled.write(b"x" * 100)
        task = asyncio.create_task(spooled.finish())
        await asyncio.sleep(0.1)  # the job runs, stalled in its first write
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        gate.set()
        for _ in range(100):  # the job ends; the file it hands over is discarded
            if not leftovers(tmp_path):
                break
            await asyncio.sleep(0.02)

    asyncio.run(main())
    assert leftovers(tmp_path) == []
