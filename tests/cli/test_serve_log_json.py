"""`serve --log-json`: one JSON object per line on stderr, one per event."""

from __future__ import annotations

import json
from pathlib import Path

from tests.dicomfiles import make_files
from tests.peers import free_port, run_cli, running, serve_argv


def test_log_json_events(tmp_path: Path) -> None:
    files = make_files(tmp_path / "in", 2)
    port = free_port()
    with running(serve_argv(tmp_path / "archive", port, "--log-json"), port) as proc:
        assert run_cli("echo", f"127.0.0.1:{port}").returncode == 0
        assert run_cli("store", f"127.0.0.1:{port}", *map(str, files), "-q").returncode == 0
        assert run_cli("find", f"127.0.0.1:{port}", "PatientID=PAT001", "--json").returncode == 0
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    lines = [line for line in out.decode().splitlines() if line.strip()]
    events = [json.loads(line) for line in lines]  # every line is one JSON object
    kinds = [e["event"] for e in events]
    # The readiness probe of tests.peers.running connects without associating: not counted.
    associations = [e for e in events if e["event"] == "association" and e["calling_ae"]]
    assert len(associations) == 3
    assert {e["outcome"] for e in associations} == {"released"}
    assert kinds.count("stored") == 2
    assert kinds.count("query") == 1
    stored = [e for e in events if e["event"] == "stored"]
    assert {e["outcome"] for e in stored} == {"stored"}
    assert all(Path(e["path"]).is_file() for e in stored)
    query = next(e for e in events if e["event"] == "query")
    assert query["level"] == "STUDY" and query["matches"] == 1 and query["status"] == 0
    assert all("time" in e for e in events)
