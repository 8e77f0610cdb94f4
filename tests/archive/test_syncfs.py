"""archive.syncfs: the file-system-wide sync the group commit uses."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from netdicom.archive import syncfs


@pytest.mark.parametrize(
    ("release", "version"),
    [
        ("6.18.44-fc-v857", (6, 18)),
        ("5.8.0-63-generic", (5, 8)),
        ("5.7.19", (5, 7)),
        ("4.19.0-rc3", (4, 19)),
        ("6.1-rc7+", (6, 1)),
        ("unknown", (0, 0)),
    ],
)
def test_kernel_version(release: str, version: tuple[int, int]) -> None:
    assert syncfs._kernel_version(release) == version


def test_kernels_before_5_8_do_not_use_syncfs(monkeypatch: pytest.MonkeyPatch) -> None:
    # Before 5.8 syncfs returned 0 even when writing back failed.
    fake = os.uname_result(("Linux", "host", "5.7.19", "#1", "x86_64"))
    monkeypatch.setattr(syncfs.os, "uname", lambda: fake)
    syncfs.syncfs_function.cache_clear()
    try:
        assert syncfs.syncfs_function() is None
    finally:
        syncfs.syncfs_function.cache_clear()


def test_syncfs_syncs_and_reports_errors(tmp_path: Path) -> None:
    function = syncfs.syncfs_function()
    if function is None:
        pytest.skip("no syncfs that reports errors here (Linux < 5.8): groups use fdatasync")
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        function(fd)
    finally:
        os.close(fd)
    with pytest.raises(OSError) as caught:
        function(fd)  # closed: EBADF, raised with its code
    assert caught.value.errno == errno.EBADF


@pytest.mark.parametrize(
    ("dirty_kb", "writeback_kb", "little"),
    [(272, 0, True), (200_000, 100_000, False), (262_143, 0, True), (131_072, 131_072, False)],
)
def test_little_dirty_reads_meminfo(
    tmp_path: Path, dirty_kb: int, writeback_kb: int, little: bool
) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text(
        f"MemTotal:       16000000 kB\nDirty:        {dirty_kb} kB\n"
        f"Writeback:        {writeback_kb} kB\nWritebackTmp:   99999999 kB\n"
    )
    assert syncfs.little_dirty(str(meminfo)) is little


def test_little_dirty_assumes_nothing_without_meminfo(tmp_path: Path) -> None:
    assert syncfs.little_dirty(str(tmp_path / "missing")) is False
    # The real one parses (a failure would say False whatever the limit).
    assert syncfs.little_dirty(limit=1 << 62) is True
