"""`store` and a file cut short in the middle of its own send, under an asynchronous operations
window (PS3.7 D.3.3.3) granted by serve: the C-STOREs sent before it are answered before the
association is aborted, so none is reported lost or sent twice, and the rest go over a new one.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from netdicom.services.store_scu import Result
from tests.dicomfiles import make_files
from tests.services.test_store_scp import archive_files, serving
from tests.services.test_store_scu import cut_while_sent
from tests.services.test_store_window import _Overlap, _store


def test_a_file_cut_short_mid_send_under_a_window(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = make_files(tmp_path / "in", 10, rows=64, columns=64)
    cut = paths[6]
    cut_while_sent(monkeypatch, cut)

    async def main() -> None:
        async with serving(tmp_path / "archive") as app:
            app.storage.on_stored.append(_Overlap(default=0.05))  # responses lag behind
            report, finished = await _store(app, paths, window=8)
        assert report.error is None
        assert len(finished.order) == 10  # each file once
        (failed,) = [o for o in report.outcomes if o.result is Result.FAILED]
        assert failed.path == cut and "changed while it was being sent" in (failed.reason or "")
        assert report.count(Result.STORED) == 9 and report.associations == 2
        assert len(archive_files(tmp_path / "archive")) == 9

    asyncio.run(asyncio.wait_for(main(), 60))
