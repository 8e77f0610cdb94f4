"""archive.direct_io: large instances of a durable archive are written with O_DIRECT, byte for
byte (whole stages, the last block padded and cut back), and fall back to the page cache where
the file system will not have it."""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
from pathlib import Path, PurePosixPath

import pytest

from netdicom.archive.direct_io import (
    BLOCK,
    O_DIRECT,
    STAGE,
    DirectWriter,
    Stage,
    StageFiller,
    StagePool,
    direct_io_works,
)
from netdicom.archive.spool import Spool, SpooledFile
from netdicom.archive.writer import Archive, Placed
from tests.faulty_disk import fails_on_write
from tests.leftovers import temp_files


@pytest.fixture
def direct_io_here(tmp_path: Path) -> None:
    """Skip unless the test's own folder takes O_DIRECT (tmpfs before Linux 6.6 does not)."""
    if not O_DIRECT or not direct_io_works(tmp_path):
        pytest.skip("this file system does not take O_DIRECT")


needs_direct_io = pytest.mark.usefixtures("direct_io_here")


def _pattern(size: int) -> bytes:
    return bytes((n * 7 + n // 251) & 0xFF for n in range(size))


def _flags(fd: int) -> int:
    return fcntl.fcntl(fd, fcntl.F_GETFL)


@needs_direct_io
@pytest.mark.parametrize(
    "sizes",
    [
        (0,),
        (1,),
        (BLOCK - 1,),
        (BLOCK,),
        (BLOCK + 1,),
        (STAGE - 1,),
        (STAGE,),
        (STAGE + 1,),
        (132, 300_001, STAGE, 5, 2 * STAGE + 123),  # a header, then fragments of any length
    ],
)
def test_written_bytes_are_the_file_exactly(tmp_path: Path, sizes: tuple[int, ...]) -> None:
    archive = Archive(tmp_path)
    assert archive.direct_io
    pending = archive.begin(b"", large=True)
    assert _flags(pending.fileno()) & O_DIRECT
    data = _pattern(sum(sizes))
    offset = 0
    for size in sizes:
        pending.write(memoryview(data)[offset : offset + size])
        offset += size
    pending.close_writes()
    pending.close_writes()  # idempotent: the tail is written once
    assert pending.size == len(data)
    placed = pending.commit(PurePosixPath("x.dcm"))
    assert (tmp_path / "x.dcm").read_bytes() == data
    assert placed.path.stat().st_size == len(data)
    assert temp_files(tmp_path) == []


@needs_direct_io
def test_a_write_refused_with_einval_goes_on_through_the_page_cache(tmp_path: Path) -> None:
    calls: list[bool] = []

    def refuses_direct(fd: int, data: memoryview) -> int:
        direct = bool(_flags(fd) & O_DIRECT)
        calls.append(direct)
        if direct and len(calls) == 2:
            raise OSError(errno.EINVAL, "Invalid argument")
        return os.write(fd, data)

    archive = Archive(tmp_path, file_write=refuses_direct)
    pending = archive.begin(b"HEAD", large=True)
    data = _pattern(3 * STAGE + 1000)
    pending.write(data)
    pending.close_writes()
    assert not _flags(pending.fileno()) & O_DIRECT
    pending.commit(PurePosixPath("y.dcm"))
    assert (tmp_path / "y.dcm").read_bytes() == b"HEAD" + data
    assert calls[:3] == [True, True, False]  # direct, refused, then buffered from there on


def test_small_files_and_archives_without_fsync_use_the_page_cache(tmp_path: Path) -> None:
    durable = Archive(tmp_path / "a")
    small = durable.begin(b"HEAD")
    assert not _flags(small.fileno()) & O_DIRECT
    small.discard()
    no_fsync = Archive(tmp_path / "b", fsync=False)
    assert not no_fsync.direct_io
    large = no_fsync.begin(b"HEAD", large=True)
    assert not _flags(large.fileno()) & O_DIRECT
    large.discard()
    assert not Archive(tmp_path / "c", direct_io=False).direct_io


def test_where_o_direct_is_refused_the_archive_uses_the_page_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = os.open

    def no_direct(path: str | os.PathLike[str], flags: int, *args: int, **kwargs: int) -> int:
        if flags & O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")  # as some file systems answer
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", no_direct)
    assert not direct_io_works(tmp_path)
    archive = Archive(tmp_path)
    assert not archive.direct_io
    pending = archive.begin(b"HEAD", large=True)
    pending.write(b"x" * 5000)
    pending.commit(PurePosixPath("p.dcm"))
    assert (tmp_path / "p.dcm").read_bytes() == b"HEAD" + b"x" * 5000
    assert not direct_io_works(tmp_path / "missing")


def test_the_stage_pool_keeps_a_bounded_number_of_buffers() -> None:
    pool = StagePool()
    stages = [pool.take() for _ in range(100)]
    assert all(len(stage.buffer) == STAGE and stage.fill == 0 for stage in stages)
    for stage in stages:
        stage.fill = 10
        pool.give(stage)
    kept = [stage for stage in stages if not stage.buffer.closed]
    assert 0 < len(kept) < len(stages)
    again = pool.take()
    assert any(again is stage for stage in kept)  # reused, not mapped again
    assert again.fill == 0


def test_the_filler_hands_out_whole_stages_then_the_last(tmp_path: Path) -> None:
    pool = StagePool()
    filler = StageFiller(pool)
    data = _pattern(2 * STAGE + 5000)
    full = filler.add(data[:100]) + filler.add(data[100:])
    assert [len(stage) for stage in full] == [STAGE, STAGE]
    assert filler.pending == 5000
    last = filler.take_last()
    assert last is not None and filler.take_last() is None
    assert b"".join(bytes(stage.view[: stage.fill]) for stage in [*full, last]) == data


@needs_direct_io
def test_stages_filled_elsewhere_are_written_and_given_back(tmp_path: Path) -> None:
    archive = Archive(tmp_path)
    filler = StageFiller(archive.stages)
    data = _pattern(STAGE + 777)
    stages = filler.add(data)
    last = filler.take_last()
    assert last is not None
    pending = archive.begin(b"", large=True)
    for stage in [*stages, last]:
        pending.write_stage(stage)
    with pytest.raises(ValueError, match="complete"):
        pending.write(b"more")  # the last stage ended the file
    pending.commit(PurePosixPath("w.dcm"))
    assert (tmp_path / "w.dcm").read_bytes() == data
    again = [archive.stages.take() for _ in range(2)]
    assert {id(stage) for stage in again} == {id(stages[0]), id(last)}


def test_a_dropped_writer_gives_its_stage_back(tmp_path: Path) -> None:
    pool = StagePool()
    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT)
    try:
        writer = DirectWriter(fd, pool, os.write)
        writer.write(b"abc")  # copied into a stage of the pool, nothing written yet
        assert os.fstat(fd).st_size == 0
        writer.release()
        writer.release()
        assert pool.take().fill == 0
        assert len(pool._free) == 0  # the one stage came back and was taken again
    finally:
        os.close(fd)


@needs_direct_io
def test_a_failed_spooled_write_gives_every_stage_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = Archive(tmp_path, file_write=fails_on_write(2, errno.EIO))
    pool = archive.stages
    taken: list[Stage] = []
    given: list[Stage] = []
    take, give = pool.take, pool.give

    def counted_take() -> Stage:
        taken.append(take())
        return taken[-1]

    def counted_give(stage: Stage) -> None:
        given.append(stage)
        give(stage)

    monkeypatch.setattr(pool, "take", counted_take)
    monkeypatch.setattr(pool, "give", counted_give)

    async def main() -> None:
        spooled = SpooledFile(Spool(), archive, b"HEAD")
        for _ in range(5):
            await spooled.write(memoryview(_pattern(STAGE)))
        with pytest.raises(OSError):
            await spooled.finish()

    asyncio.run(main())
    assert temp_files(tmp_path) == []
    # Six stages were filled (the header and 5 MiB): written, failed or never written, each
    # came back to the pool, once.
    assert len(taken) == 6 and sorted(map(id, given)) == sorted(map(id, taken))


@needs_direct_io
def test_a_spooled_instance_is_written_directly_and_placed_whole(tmp_path: Path) -> None:
    seen: list[bool] = []

    def write(fd: int, data: memoryview) -> int:
        seen.append(bool(_flags(fd) & O_DIRECT))
        return os.write(fd, data)

    archive = Archive(tmp_path, file_write=write)
    header = _pattern(333)
    fragments = [_pattern(size) for size in (131_060, 131_060, 1 << 20, 77_777)]

    async def main() -> Placed:
        spooled = SpooledFile(Spool(), archive, header)
        for fragment in fragments:
            await spooled.write(memoryview(fragment))
        return await spooled.commit(PurePosixPath("s/z.dcm"), lambda placed: placed)

    placed = asyncio.run(main())
    assert placed.path.read_bytes() == header + b"".join(fragments)
    assert seen and all(seen)
    assert temp_files(tmp_path) == []


@needs_direct_io
def test_named_temporary_files_are_written_directly_too(tmp_path: Path) -> None:
    archive = Archive(tmp_path, unnamed_temp=False)  # systems without O_TMPFILE
    pending = archive.begin(b"HEAD", large=True)
    assert pending.path is not None and _flags(pending.fileno()) & O_DIRECT
    data = _pattern(STAGE + 4097)
    pending.write(data)
    pending.commit(PurePosixPath("n.dcm"))
    assert (tmp_path / "n.dcm").read_bytes() == b"HEAD" + data
    assert temp_files(tmp_path) == []


@needs_direct_io
def test_without_unnamed_files_the_probe_tries_a_named_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = os.open
    tmpfile = getattr(os, "O_TMPFILE", 0)
    if not tmpfile:
        pytest.skip("no O_TMPFILE here: the named probe is the only one")

    def no_tmpfile(path: str | os.PathLike[str], flags: int, *args: int, **kwargs: int) -> int:
        if flags & tmpfile == tmpfile:
            raise OSError(errno.EOPNOTSUPP, "Operation not supported")
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", no_tmpfile)
    assert direct_io_works(tmp_path)
    assert list(tmp_path.iterdir()) == []  # the named probe is gone
