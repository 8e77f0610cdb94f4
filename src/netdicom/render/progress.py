"""A Rich progress bar on stderr for `netdicom store`: files, bytes, throughput, ETA."""

from __future__ import annotations

from types import TracebackType
from typing import Any

from netdicom.services.store_scu import FileOutcome
from netdicom.transport.association import Association

# Bytes accumulated before the bar is updated: Rich takes a lock per update, and a 0.5 MB file
# arrives in dozens of pieces. Big files still move the bar every few MB.
_UPDATE_EVERY = 4 << 20


class StoreProgress:
    """Observer of a store (StoreObserver) showing one bar; does nothing when disabled."""

    def __init__(self, total_files: int, total_bytes: int, *, enabled: bool) -> None:
        self._enabled = enabled and total_files > 0
        self._total_files = total_files
        self._files = 0
        self._pending = 0
        self._progress: Any = None
        self._task: Any = None
        if self._enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TextColumn("{task.fields[files]}"),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._task = self._progress.add_task(
                "store", total=total_bytes, files=self._files_text()
            )

    def _files_text(self) -> str:
        return f"{self._files}/{self._total_files} files"

    def __enter__(self) -> StoreProgress:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()

    def opened(self, assoc: Association) -> None:
        pass

    def sent_bytes(self, count: int) -> None:
        if self._progress is None:
            return
        self._pending += count
        if self._pending >= _UPDATE_EVERY:
            self._progress.advance(self._task, self._pending)
            self._pending = 0

    def finished(self, outcome: FileOutcome) -> None:
        if self._progress is None or outcome.sop_instance_uid is None:
            return  # skipped paths were never counted in the totals
        self._files += 1
        self._progress.update(self._task, advance=self._pending, files=self._files_text())
        self._pending = 0
