"""netdicom.services.planning walking folders (`store -r`): links to folders are followed once,
and whatever cannot be listed or reached is reported, never dropped in silence."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread

from netdicom.services.planning import collect, scan
from tests.dicomfiles import make_files
from tests.peers import DCMTK_ENV, free_port, have_dcmtk, run_cli, running


def _study_behind_a_link(root: Path) -> tuple[Path, list[Path]]:
    """root/top holds one file and `study1`, a link to root/data (3 files)."""
    data = make_files(root / "data", 3)
    top = root / "top"
    make_files(top, 1)
    (top / "study1").symlink_to(root / "data")
    return top, data


def test_a_link_to_a_folder_is_followed(tmp_path: Path) -> None:
    top, data = _study_behind_a_link(tmp_path)
    result = scan([top], recursive=True)
    assert len(result.files) == 4
    assert {f.path.name for f in result.files} >= {p.name for p in data}
    assert not result.skipped


def test_a_link_loop_and_a_folder_reached_twice_are_walked_once(tmp_path: Path) -> None:
    top, _ = _study_behind_a_link(tmp_path)
    (top / "study1-again").symlink_to(tmp_path / "data")  # the same folder, a second name
    (tmp_path / "data" / "up").symlink_to(top)  # a loop: data/up/study1/up/...
    files, skipped = collect([top, tmp_path / "data"], recursive=True)
    assert len(files) == 4
    assert sum(1 for f in files if f.parent.name == "study1") == 3  # found through the link
    assert not skipped  # silently: nothing was left out


def test_a_path_longer_than_path_max_is_listed_as_failed(tmp_path: Path) -> None:
    make_files(tmp_path, 1)
    name = "d" * 250
    # 18 x 251 bytes: past Linux's PATH_MAX of 4096, with a file at the bottom.
    _make_deep(tmp_path, name, 18)
    result = scan([tmp_path], recursive=True)
    assert len(result.files) == 1
    (failed,) = result.skipped
    assert failed.failed
    assert "File name too long" in failed.reason
    assert str(failed.path).startswith(str(tmp_path / name))


def _make_deep(root: Path, name: str, levels: int) -> None:
    """Folders nested past PATH_MAX, made with relative paths (a full path could not be used)."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(levels):
            os.mkdir(name, dir_fd=fd)
            inner = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = inner
        out = os.open("deep.dcm", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.close(out)
    finally:
        os.close(fd)


def test_a_broken_link_is_listed_as_failed(tmp_path: Path) -> None:
    make_files(tmp_path, 1)
    (tmp_path / "gone").symlink_to(tmp_path / "no-such-folder")
    result = scan([tmp_path], recursive=True)
    (failed,) = result.skipped
    assert failed.failed
    assert failed.reason == f"a broken symbolic link (to {tmp_path / 'no-such-folder'})"


def test_a_link_to_itself_is_listed_as_failed(tmp_path: Path) -> None:
    (tmp_path / "self").symlink_to(tmp_path / "self")
    _, skipped = collect([tmp_path], recursive=True)
    (failed,) = skipped
    assert failed.failed
    assert "Too many levels of symbolic links" in failed.reason


def test_a_fifo_is_skipped_not_opened(tmp_path: Path) -> None:
    make_files(tmp_path, 1)
    os.mkfifo(tmp_path / "pipe")  # opening it would block the scan for ever
    result = scan([tmp_path], recursive=True)
    (skipped,) = result.skipped
    assert (skipped.path.name, skipped.reason, skipped.failed) == (
        "pipe",
        "not a regular file",
        False,
    )


def test_a_fifo_named_on_the_command_line_is_skipped_too(tmp_path: Path) -> None:
    # Named, not walked, it was opened: the scan blocked until a writer came (never).
    (file,) = make_files(tmp_path / "f", 1)
    os.mkfifo(tmp_path / "pipe.dcm")
    result = scan([tmp_path / "pipe.dcm", file], recursive=False)
    assert [f.path for f in result.files] == [file]
    (skipped,) = result.skipped
    assert (skipped.path.name, skipped.reason) == ("pipe.dcm", "not a regular file")


def test_a_folder_that_cannot_be_listed_is_listed_as_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # chmod 0 stops everyone but root (CI runs as root): the refusal is simulated instead.
    make_files(tmp_path / "locked", 2)
    real_scandir = os.scandir

    def scandir(path: Any) -> Any:
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    result = scan([tmp_path], recursive=True)
    (failed,) = result.skipped
    assert failed.failed
    assert failed.reason == "cannot list the folder: Permission denied"


# --- against dcmtk: storescu +sd +r sends what is behind links too, and so do we ----------------


def _received(out: Path) -> set[str]:
    return {str(dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in out.iterdir()}


@pytest.mark.interop
@pytest.mark.skipif(not have_dcmtk(), reason="dcmtk is not installed")
def test_store_r_sends_what_storescu_sends_behind_links(tmp_path: Path) -> None:
    top, _ = _study_behind_a_link(tmp_path)
    by_us, by_dcmtk = tmp_path / "by-us", tmp_path / "by-dcmtk"
    by_us.mkdir()
    by_dcmtk.mkdir()
    port = free_port()
    with running(["storescp", "-od", str(by_us), str(port)], port, env=DCMTK_ENV):
        result = run_cli("store", f"127.0.0.1:{port}", "-r", str(top), "--no-progress")
    assert result.returncode == 0, result.stderr
    with running(["storescp", "-od", str(by_dcmtk), str(port)], port, env=DCMTK_ENV):
        subprocess.run(
            ["storescu", "+sd", "+r", "127.0.0.1", str(port), str(top)],
            env=DCMTK_ENV,
            check=True,
            capture_output=True,
            timeout=60,
        )
    assert len(_received(by_us)) == 4
    assert _received(by_us) == _received(by_dcmtk)


def test_store_r_of_an_archive_skips_serve_s_own_folders(tmp_path: Path) -> None:
    # Walkthrough 6d: index.sqlite, its -wal, -shm and serve.lock were listed as skipped
    # non-DICOM files of a `store -r` of an archive folder.
    from netdicom.archive.index import INDEX_DIR
    from netdicom.archive.writer import TEMP_DIR
    from netdicom.services import planning

    assert {INDEX_DIR, TEMP_DIR} == planning._OWN_FOLDERS  # kept as text: no sqlite import
    make_files(tmp_path / "P1", 2)
    for folder in (INDEX_DIR, TEMP_DIR):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "index.sqlite").write_bytes(b"SQLite format 3\0")
    files, skipped = collect([tmp_path], recursive=True)
    assert len(files) == 2 and skipped == []
    # Folders of those names elsewhere are walked (their files were dropped unseen, 6v).
    other = tmp_path.parent / f"{tmp_path.name}-other"
    make_files(other / ".incoming", 1)
    make_files(other / ".netdicom", 1)
    files, _ = collect([other], recursive=True)
    assert len(files) == 2
