"""The archive writer: atomic placement, duplicates, sweeping, failures leave nothing."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path, PurePosixPath

import pytest

from netdicom.archive import writer
from netdicom.archive.layout import UnsafePath
from netdicom.archive.writer import TEMP_DIR, Archive, DuplicatePolicy, Outcome
from tests.dicomfiles import make_dataset, write_instance
from tests.faulty_disk import fails_on_write
from tests.leftovers import temp_files


@pytest.fixture(autouse=True, params=["unnamed", "named"])
def temp_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test runs with unnamed temporary files (O_TMPFILE, where the system has them)
    and with named ones in DIR/.incoming (the portable fallback)."""
    if request.param == "named":
        monkeypatch.setattr(writer, "_unnamed_files_dir", lambda directory: None)
    return str(request.param)


def files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def store(archive: Archive, relative: str, body: bytes) -> tuple[Path, Outcome]:
    pending = archive.begin(b"HEAD")
    pending.write(memoryview(body))
    placed = pending.commit(PurePosixPath(relative))
    return placed.path, placed.outcome


@pytest.mark.parametrize("fsync", [True, False])
def test_store_places_the_file_and_leaves_no_temp(tmp_path: Path, fsync: bool) -> None:
    archive = Archive(tmp_path, fsync=fsync)
    path, outcome = store(archive, "a/b/c.dcm", b"BODY")
    assert outcome is Outcome.STORED
    assert path == tmp_path / "a/b/c.dcm"
    assert path.read_bytes() == b"HEADBODY"
    assert files(tmp_path) == ["a/b/c.dcm"]


@pytest.mark.parametrize(
    ("policy", "outcome", "expected"),
    [
        # What is there is no DICOM file (a damaged one): keep replaces it.
        (DuplicatePolicy.KEEP, Outcome.REPLACED_DAMAGED, {"x.dcm": b"HEAD2"}),
        (DuplicatePolicy.OVERWRITE, Outcome.OVERWROTE, {"x.dcm": b"HEAD2"}),
        (DuplicatePolicy.RENAME, Outcome.RENAMED, {"x.dcm": b"HEAD1", "x_1.dcm": b"HEAD2"}),
    ],
)
def test_duplicates(
    tmp_path: Path, policy: DuplicatePolicy, outcome: Outcome, expected: dict[str, bytes]
) -> None:
    archive = Archive(tmp_path, on_duplicate=policy, fsync=False)
    assert store(archive, "x.dcm", b"1")[1] is Outcome.STORED
    assert store(archive, "x.dcm", b"2")[1] is outcome
    assert {name: (tmp_path / name).read_bytes() for name in files(tmp_path)} == expected


@pytest.mark.parametrize("damage", ["cut short", "not dicom"])
def test_keep_keeps_a_whole_file_and_replaces_a_damaged_one(tmp_path: Path, damage: str) -> None:
    # Walkthrough 5: keep kept a file cut short (or overwritten with notes), answered success,
    # and threw away the good copy the sender offered, which then never came again.
    good = write_instance(tmp_path / "src.dcm", make_dataset()).read_bytes()
    archive = Archive(tmp_path / "a", fsync=False)
    header, body = good[:132], good[132:]
    assert store(archive, "x.dcm", body)[1] is Outcome.STORED  # store() writes b"HEAD"
    (tmp_path / "a/x.dcm").write_bytes(good)
    pending = archive.begin(header)
    pending.write(memoryview(body))
    assert pending.commit(PurePosixPath("x.dcm")).outcome is Outcome.KEPT_EXISTING
    target = tmp_path / "a/x.dcm"
    target.write_bytes(good[: len(good) // 2] if damage == "cut short" else b"my notes")
    fresh = archive.begin(header)
    fresh.write(memoryview(body))
    assert fresh.commit(PurePosixPath("x.dcm")).outcome is Outcome.REPLACED_DAMAGED
    assert target.read_bytes() == good


@pytest.mark.parametrize("fsync", [True, False])
def test_a_folder_removed_while_serving_is_made_again(tmp_path: Path, fsync: bool) -> None:
    # The writer caches folders it made; someone tidying the archive must not make every
    # later store into that folder fail.
    import shutil

    archive = Archive(tmp_path, fsync=fsync)
    store(archive, "p/s/1.dcm", b"1")
    shutil.rmtree(tmp_path / "p")
    path, outcome = store(archive, "p/s/2.dcm", b"2")
    assert outcome is Outcome.STORED and path.read_bytes() == b"HEAD2"
    assert files(tmp_path) == ["p/s/2.dcm"]


@pytest.mark.parametrize("fsync", [True, False])
def test_the_temporary_folder_removed_while_serving_is_made_again(
    tmp_path: Path, fsync: bool
) -> None:
    # On Linux it is always empty: `find DIR -type d -empty -delete` removes it, and every
    # later store failed (A700) until a restart.
    archive = Archive(tmp_path, fsync=fsync)
    store(archive, "p/1.dcm", b"1")
    (tmp_path / TEMP_DIR).rmdir()
    path, outcome = store(archive, "p/2.dcm", b"2")
    assert outcome is Outcome.STORED and path.read_bytes() == b"HEAD2"
    assert (tmp_path / TEMP_DIR).is_dir()


@pytest.mark.parametrize("shared", [False, True])
def test_a_shared_temporary_folder_made_again_is_no_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, shared: bool
) -> None:
    # Walkthrough 7a: two get runs into one --out; the first removed the empty temporary
    # folder at its end and the second warned "was removed" in cron mail. A retrieve's folder
    # is shared (temp_shared); serve's is locked to it, and a removal there is worth a word.
    archive = Archive(tmp_path, fsync=False, temp_shared=shared)
    (tmp_path / TEMP_DIR).rmdir()
    with caplog.at_level("DEBUG", logger="netdicom"):
        store(archive, "p/1.dcm", b"1")
    (record,) = [r for r in caplog.records if "made again" in r.getMessage()]
    assert record.levelname == ("DEBUG" if shared else "WARNING")


def test_the_archive_folder_gone_is_not_made_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Renamed away while serving: the log said the temporary folder was "made again" (it was
    # not, the store failed), and never that DIR itself was gone.
    archive = Archive(tmp_path / "a", fsync=False)
    (tmp_path / "a").rename(tmp_path / "elsewhere")
    with caplog.at_level("ERROR", logger="netdicom"), pytest.raises(FileNotFoundError):
        store(archive, "p/1.dcm", b"1")
    assert "archive folder" in caplog.text and "is gone" in caplog.text
    assert not (tmp_path / "a").exists()


def test_rename_counts_up(tmp_path: Path) -> None:
    archive = Archive(tmp_path, on_duplicate=DuplicatePolicy.RENAME, fsync=False)
    paths = [store(archive, "d/x.dcm", str(n).encode())[0].name for n in range(4)]
    assert paths == ["x.dcm", "x_1.dcm", "x_2.dcm", "x_3.dcm"]


def test_failing_write_leaves_nothing(tmp_path: Path) -> None:
    archive = Archive(tmp_path, file_write=fails_on_write(2, and_after=True))
    pending = archive.begin(b"HEAD")
    with pytest.raises(OSError, match="No space"):
        pending.write(b"BODY")
    pending.discard()
    assert files(tmp_path) == []


def test_short_writes_are_completed(tmp_path: Path) -> None:
    archive = Archive(tmp_path, fsync=False, file_write=lambda fd, data: os.write(fd, data[:3]))
    path, _ = store(archive, "x.dcm", b"0123456789")
    assert path.read_bytes() == b"HEAD0123456789"


def test_unsafe_relative_paths_are_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    archive = Archive(root)
    (root / "link").symlink_to(outside)
    for relative in ("../x.dcm", "/etc/x.dcm", "link/x.dcm"):
        pending = archive.begin(b"HEAD")
        with pytest.raises(UnsafePath):
            pending.commit(PurePosixPath(relative))
    assert files(outside) == []
    assert files(root) == []


def test_sweep_removes_temp_files_of_dead_processes_only(tmp_path: Path) -> None:
    archive = Archive(tmp_path)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(dead.stdout)
    temp = tmp_path / TEMP_DIR
    (temp / f"{dead_pid}-1.part").write_bytes(b"x")
    (temp / f"{os.getppid()}-1.part").write_bytes(b"x")  # a live process
    (temp / "notes.txt").write_bytes(b"x")  # not ours
    assert archive.sweep() == 1
    assert sorted(p.name for p in temp.iterdir()) == [f"{os.getppid()}-1.part", "notes.txt"]


def test_deferred_file_is_written_only_at_commit(tmp_path: Path) -> None:
    from netdicom.archive.writer import DeferredFile

    archive = Archive(tmp_path, fsync=True)
    deferred = DeferredFile(archive, b"HEAD")
    deferred.write(b"AB")
    deferred.write(memoryview(b"CD"))
    assert deferred.size == 8
    assert files(tmp_path) == []  # nothing on disk before the commit, not even a temp file
    placed = deferred.create().commit(PurePosixPath("a/b.dcm"))
    assert placed.outcome is Outcome.STORED and placed.path.read_bytes() == b"HEADABCD"
    assert files(tmp_path) == ["a/b.dcm"]
    dropped = DeferredFile(archive, b"HEAD")
    dropped.write(b"XY")
    dropped.discard()
    assert files(tmp_path) == ["a/b.dcm"]


def test_deferred_file_failing_at_commit_leaves_nothing(tmp_path: Path) -> None:
    from netdicom.archive.writer import DeferredFile

    def full_disk(fd: int, data: memoryview) -> int:
        if bytes(data).startswith(b"BODY"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return os.write(fd, data)

    archive = Archive(tmp_path, fsync=True, file_write=full_disk)
    deferred = DeferredFile(archive, b"HEAD")
    deferred.write(b"BODY")
    with pytest.raises(OSError) as caught:
        deferred.create()
    assert caught.value.errno == errno.ENOSPC
    assert files(tmp_path) == []
    assert temp_files(tmp_path) == []


def test_sealed_deferred_file_is_counted_as_held_until_written_or_dropped(
    tmp_path: Path,
) -> None:
    import gc

    from netdicom.archive.writer import DeferredFile

    archive = Archive(tmp_path, fsync=True)
    received = bytearray(b"....AB..CD")  # stands for the receiver's buffer
    deferred = DeferredFile(archive, b"HEAD")
    deferred.write(memoryview(received)[4:6])
    deferred.write(memoryview(received)[8:10])
    assert archive.held == 0  # still being received
    deferred.seal()
    assert archive.held == 8
    received[:] = b"x" * 10  # the data were copied: the buffer may be reused at once
    placed = deferred.create().commit(PurePosixPath("a/b.dcm"))
    assert placed.path.read_bytes() == b"HEADABCD"
    assert archive.held == 0

    dropped = DeferredFile(archive, b"HEAD")
    dropped.write(b"XY")
    dropped.seal()
    assert archive.held == 6
    dropped.discard()
    assert archive.held == 0
    dropped.discard()  # idempotent
    assert archive.held == 0

    forgotten = DeferredFile(archive, b"HEAD")
    forgotten.write(b"XYZW")
    forgotten.seal()
    assert archive.held == 8
    del forgotten  # its answer never ran (the association went away)
    gc.collect()
    assert archive.held == 0
    assert files(tmp_path) == ["a/b.dcm"]


def test_sealed_deferred_file_failing_at_create_leaves_nothing(tmp_path: Path) -> None:
    from netdicom.archive.writer import DeferredFile

    def full_disk(fd: int, data: memoryview) -> int:
        if b"BODY" in bytes(data):
            raise OSError(errno.ENOSPC, "No space left on device")
        return os.write(fd, data)

    archive = Archive(tmp_path, fsync=True, file_write=full_disk)
    deferred = DeferredFile(archive, b"HEAD")
    deferred.write(b"BODY")
    deferred.seal()
    with pytest.raises(OSError) as caught:
        deferred.create()
    assert caught.value.errno == errno.ENOSPC
    assert archive.held == 0
    assert files(tmp_path) == []
    assert temp_files(tmp_path) == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="O_TMPFILE is Linux's")
def test_unnamed_temporary_files_have_no_name_until_placed(tmp_path: Path, temp_kind: str) -> None:
    archive = Archive(tmp_path)
    assert archive.unnamed_temp is (temp_kind == "unnamed")
    pending = archive.begin(b"HEAD")
    pending.write(b"BODY")
    if temp_kind == "unnamed":
        # Nothing in any folder (a crash here leaves nothing), one open file.
        assert files(tmp_path) == []
        assert len(temp_files(tmp_path)) == 1
    else:
        assert len(files(tmp_path)) == 1
    placed = pending.commit(PurePosixPath("p/x.dcm"))
    assert files(tmp_path) == ["p/x.dcm"] and placed.path.read_bytes() == b"HEADBODY"
    assert temp_files(tmp_path) == []
    discarded = archive.begin(b"HEAD")
    discarded.discard()
    assert temp_files(tmp_path) == [] and files(tmp_path) == ["p/x.dcm"]


def test_overwrite_replaces_atomically_and_leaves_no_temp(tmp_path: Path) -> None:
    archive = Archive(tmp_path, on_duplicate=DuplicatePolicy.OVERWRITE)
    for body in (b"1", b"2", b"3"):
        store(archive, "s/x.dcm", body)
    assert (tmp_path / "s/x.dcm").read_bytes() == b"HEAD3"
    assert files(tmp_path) == ["s/x.dcm"] and temp_files(tmp_path) == []


class _Syncs:
    """Counts the syncs place_all makes (and can fail the n-th syncfs)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, syncfs: bool, fail_at: int = 0) -> None:
        self.fdatasync = self.folders = self.syncfs = 0
        real_fdatasync, real_fsync_dir = os.fdatasync, writer._fsync_dir
        real_syncfs = writer.syncfs_function()
        if syncfs and real_syncfs is None:
            pytest.skip("no syncfs that reports errors here (Linux < 5.8): groups use fdatasync")

        def fdatasync(fd: int) -> None:
            self.fdatasync += 1
            real_fdatasync(fd)

        def fsync_dir(path: str) -> None:
            self.folders += 1
            real_fsync_dir(path)

        def counted_syncfs(fd: int) -> None:
            self.syncfs += 1
            if self.syncfs == fail_at:
                raise OSError(errno.EIO, "syncfs: Input/output error")
            assert real_syncfs is not None
            real_syncfs(fd)

        monkeypatch.setattr(writer.os, "fdatasync", fdatasync)
        monkeypatch.setattr(writer, "_fsync_dir", fsync_dir)
        monkeypatch.setattr(writer, "syncfs_function", lambda: counted_syncfs if syncfs else None)
        monkeypatch.setattr(writer, "little_dirty", lambda: True)  # see the test below


def _group(archive: Archive, relatives: list[str]) -> list[object]:
    pending = []
    for number, _ in enumerate(relatives):
        file = archive.begin(b"HEAD")
        file.write(str(number).encode())
        pending.append(file)
    return list(
        archive.place_all([(p, PurePosixPath(r)) for p, r in zip(pending, relatives, strict=True)])
    )


@pytest.mark.parametrize("syncfs", [True, False])
def test_a_group_is_placed_with_one_sync_per_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, syncfs: bool
) -> None:
    old = write_instance(tmp_path / "a/dup.dcm", make_dataset()).read_bytes()  # whole: kept
    archive = Archive(tmp_path)
    syncs = _Syncs(monkeypatch, syncfs=syncfs)
    results = _group(archive, ["a/1.dcm", "a/2.dcm", "b/3.dcm", "../x.dcm", "a/dup.dcm"])
    assert [getattr(r, "outcome", None) for r in results] == [
        Outcome.STORED,
        Outcome.STORED,
        Outcome.STORED,
        None,
        Outcome.KEPT_EXISTING,
    ]
    assert isinstance(results[3], UnsafePath)
    assert files(tmp_path) == ["a/1.dcm", "a/2.dcm", "a/dup.dcm", "b/3.dcm"]
    assert (tmp_path / "b/3.dcm").read_bytes() == b"HEAD2"
    assert (tmp_path / "a/dup.dcm").read_bytes() == old
    assert temp_files(tmp_path) == []
    if syncfs:
        # Data, then names: two syncs of the file system for the whole group.
        assert (syncs.syncfs, syncs.fdatasync, syncs.folders) == (2, 0, 0)
    else:
        # The unsafe path is refused before its sync; folders a and b, and b's parent (the
        # root, which gained b), each synced once.
        assert (syncs.syncfs, syncs.fdatasync, syncs.folders) == (0, 4, 3)


def test_a_single_file_is_synced_alone_without_syncfs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    syncs = _Syncs(monkeypatch, syncfs=True)
    store(Archive(tmp_path), "a/1.dcm", b"1")
    # fdatasync + the folder and its parent, as before groups: no file-system-wide sync.
    assert (syncs.syncfs, syncs.fdatasync, syncs.folders) == (0, 1, 2)


def test_a_group_without_fsync_syncs_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    syncs = _Syncs(monkeypatch, syncfs=True)
    results = _group(Archive(tmp_path, fsync=False), ["a/1.dcm", "a/2.dcm"])
    assert all(getattr(r, "outcome", None) is Outcome.STORED for r in results)
    assert (syncs.syncfs, syncs.fdatasync, syncs.folders) == (0, 0, 0)


def test_a_failed_data_sync_fails_the_group_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _Syncs(monkeypatch, syncfs=True, fail_at=1)
    results = _group(Archive(tmp_path), ["a/1.dcm", "a/2.dcm", "b/3.dcm"])
    assert all(isinstance(r, OSError) and r.errno == errno.EIO for r in results)
    assert files(tmp_path) == [] and temp_files(tmp_path) == []


def test_a_failed_name_sync_fails_every_file_the_group_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a/old.dcm").write_bytes(b"OLD")
    _Syncs(monkeypatch, syncfs=True, fail_at=2)
    archive = Archive(tmp_path, on_duplicate=DuplicatePolicy.OVERWRITE)
    results = _group(archive, ["a/1.dcm", "../x.dcm", "a/old.dcm"])
    assert isinstance(results[0], OSError) and results[0].errno == errno.EIO
    assert isinstance(results[1], UnsafePath)
    assert isinstance(results[2], OSError)
    # The new name is taken back: no file is there whose sender is told it failed. The file
    # that replaced another stays (the old one is gone); its data are whole, synced first.
    assert files(tmp_path) == ["a/old.dcm"]
    assert (tmp_path / "a/old.dcm").read_bytes() == b"HEAD2"
    assert temp_files(tmp_path) == []


def test_a_failed_folder_fsync_takes_back_the_names_it_would_have_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _Syncs(monkeypatch, syncfs=False)
    failing = str(tmp_path / "b")

    def fsync_dir(path: str) -> None:
        if path == failing:
            raise OSError(errno.EIO, "fsync: Input/output error")

    monkeypatch.setattr(writer, "_fsync_dir", fsync_dir)
    results = _group(Archive(tmp_path), ["a/1.dcm", "b/2.dcm"])
    assert getattr(results[0], "outcome", None) is Outcome.STORED
    assert isinstance(results[1], OSError) and results[1].errno == errno.EIO
    assert files(tmp_path) == ["a/1.dcm"] and temp_files(tmp_path) == []


def test_a_file_written_while_a_sync_failed_fails_in_the_next_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # syncfs reports a write error once, to whichever group syncs next: a file that was being
    # written then (the error may have been its own) cannot be reported stored later.
    _Syncs(monkeypatch, syncfs=True, fail_at=1)
    archive = Archive(tmp_path)
    before = archive.begin(b"HEAD")
    before.write(b"B")
    first = _group(archive, ["a/1.dcm", "a/2.dcm"])
    assert all(isinstance(r, OSError) and r.errno == errno.EIO for r in first)
    after = archive.begin(b"HEAD")
    after.write(b"A")
    second = archive.place_all(
        [(before, PurePosixPath("b/before.dcm")), (after, PurePosixPath("b/after.dcm"))]
    )
    assert isinstance(second[0], OSError) and "while this file was written" in str(second[0])
    assert getattr(second[1], "outcome", None) is Outcome.STORED
    assert files(tmp_path) == ["b/after.dcm"] and temp_files(tmp_path) == []


def test_a_group_is_synced_file_by_file_while_much_is_waiting_to_be_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another program's large write pending: syncfs would wait for it too.
    syncs = _Syncs(monkeypatch, syncfs=True)
    monkeypatch.setattr(writer, "little_dirty", lambda: False)
    results = _group(Archive(tmp_path), ["a/1.dcm", "a/2.dcm"])
    assert all(getattr(r, "outcome", None) is Outcome.STORED for r in results)
    assert (syncs.syncfs, syncs.fdatasync, syncs.folders) == (0, 2, 2)


@pytest.mark.parametrize("fsync", [True, False])
def test_a_removed_version_is_made_durable_before_the_answer(
    tmp_path: Path, fsync: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Walkthrough 6a: an overwrite that moved an instance to another path removed the old
    # file without syncing its folder; after a power cut both versions could be back.
    archive = Archive(tmp_path, fsync=fsync)
    store(archive, "a/one.dcm", b"one")
    old, _ = store(archive, "b/c/two.dcm", b"two")
    synced: list[str] = []
    monkeypatch.setattr(writer, "_fsync_dir", synced.append)
    archive.remove(old)
    assert files(tmp_path) == ["a/one.dcm"]
    # b/c and b went with it: the root is what keeps the change.
    assert synced == ([str(tmp_path)] if fsync else [])
