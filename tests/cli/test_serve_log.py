"""`serve`'s log on stderr: a line per event, or with `--log-json` one JSON object per line."""

from __future__ import annotations

import json
import logging
import re
import socket
import time
from datetime import datetime
from pathlib import Path

from netdicom.render.log_text import TextFormatter
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


def test_text_log_has_a_line_per_stored_instance(tmp_path: Path) -> None:
    files = make_files(tmp_path / "in", 3)
    port = free_port()
    with running(serve_argv(tmp_path / "archive", port), port) as proc:
        assert run_cli("store", f"127.0.0.1:{port}", *map(str, files), "-q").returncode == 0
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    stored = re.findall(
        r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[+-]\d{4}) stored ([0-9.]+) from NETDICOM \(stored\)$",
        out.decode(),
        re.MULTILINE,
    )
    assert len(stored) == 3
    for stamp, _ in stored:
        when = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S%z")  # with its UTC offset
        assert abs(when.timestamp() - time.time()) < 120


def test_text_formatter_formats_each_second_once_and_as_logging_does() -> None:
    ours = TextFormatter()
    stock = logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S%z")
    converted: list[float | None] = []

    def counting(seconds: float | None) -> time.struct_time:
        converted.append(seconds)
        return time.localtime(seconds)

    ours.converter = counting  # type: ignore[method-assign]

    def record(created: float, message: str) -> logging.LogRecord:
        made = logging.LogRecord("netdicom.events", logging.INFO, "", 0, message, None, None)
        made.created = created
        return made

    base = 1_800_000_000.0
    for created in (base + 0.1, base + 0.9, base + 1.2, base + 3600.5, base + 0.3):
        first, second = record(created, "stored 1.2.3"), record(created, "stored 1.2.3")
        assert ours.format(first) == stock.format(second)
    # Five records in four distinct seconds (base and base + 0.9 share one; base + 0.3 comes
    # back to it after others): the time was converted four times, not five.
    assert len(converted) == 4


ARTIM_OUTCOME = "closed: no A-ASSOCIATE-RQ within the ARTIM timeout"


def test_connection_closed_by_artim_says_so(tmp_path: Path) -> None:
    # It was logged with the outcome "open", as if the connection were still there.
    for json_log in (False, True):
        port = free_port()
        extra = ("--acse-timeout", "0.5", *(("--log-json",) if json_log else ()))
        with running(serve_argv(tmp_path / "archive", port, *extra), port) as proc:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                assert sock.recv(1) == b""  # closed by serve at ARTIM, nothing sent
            time.sleep(0.2)
            proc.terminate()
            out, _ = proc.communicate(timeout=20)
        text = out.decode()
        if json_log:
            events = [json.loads(line) for line in text.splitlines() if line.strip()]
            outcomes = [e["outcome"] for e in events if e["event"] == "association"]
            assert ARTIM_OUTCOME in outcomes, outcomes
            assert "open" not in outcomes
        else:
            assert f"(no A-ASSOCIATE-RQ): {ARTIM_OUTCOME}" in text, text
            assert ": open" not in text


def test_an_invalid_pdu_is_logged_with_why_it_was_aborted(tmp_path: Path) -> None:
    # It was logged "(no A-ASSOCIATE-RQ): open", with no reason, though serve had aborted.
    port = free_port()
    with running(serve_argv(tmp_path / "archive", port, "--log-json"), port) as proc:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(bytes([0x09, 0, 0, 0, 0, 4, 0, 0, 0, 0]))  # no such PDU type
            answer = sock.recv(10)
        time.sleep(0.2)
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    assert answer[:1] == b"\x07"  # A-ABORT
    events = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
    outcomes = [e["outcome"] for e in events if e["event"] == "association"]
    assert "aborted: invalid PDU: unknown PDU type 0x09" in outcomes, outcomes


def test_rejected_presentation_contexts_are_logged_with_the_reason(tmp_path: Path) -> None:
    # "The modality says it cannot send": the log said only "released".
    from netdicom.core import uids
    from netdicom.core.acse import ProposedContext
    from netdicom.core.pdu import AssociateAC, ReleaseRP
    from tests.hardening.raw import RawPeer, echo_rq

    port = free_port()
    contexts = [
        ProposedContext(uids.VERIFICATION, (uids.IMPLICIT_VR_LE,)),
        ProposedContext("1.2.826.0.1.3680043.8.498.999.1", (uids.IMPLICIT_VR_LE,)),
    ]
    argv = serve_argv(tmp_path / "archive", port, "--no-unknown", "--log-json")
    with running(argv, port) as proc:
        with RawPeer(port) as peer:
            assert isinstance(peer.associate(echo_rq(contexts=contexts)), AssociateAC)
            assert isinstance(peer.release(), ReleaseRP)
        time.sleep(0.2)
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    events = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
    (event,) = [e for e in events if e["event"] == "association" and e["calling_ae"]]
    assert event["outcome"] == "released"
    (rejected,) = event["rejected_contexts"]
    assert rejected.startswith("context 3, 1.2.826.0.1.3680043.8.498.999.1")
    assert "not supported" in rejected


def test_tracebacks_only_with_debug_and_warnings_say_so() -> None:
    # README: --debug adds tracebacks, "which are otherwise never shown"; serve's log showed
    # one of 15-25 lines per failed index commit or query.
    import sqlite3
    import sys

    try:
        raise sqlite3.OperationalError("database or disk is full")
    except sqlite3.OperationalError:
        info = sys.exc_info()
    record = logging.LogRecord("netdicom.index", logging.ERROR, __file__, 1,
                               "committing the index failed", None, info)  # fmt: skip
    plain = TextFormatter().format(record)
    assert "\n" not in plain and "Traceback" not in plain
    assert plain.endswith(
        "error: committing the index failed: OperationalError: database or disk is full"
    )
    assert "Traceback" in TextFormatter(debug=True).format(record)
    note = logging.LogRecord("netdicom", logging.INFO, __file__, 1, "stored", None, None)
    assert "warning" not in TextFormatter().format(note)


def test_the_log_accounts_for_each_association(tmp_path: Path) -> None:
    # Walk-through 4: no counts or duration per association, no peer address per instance.
    files = make_files(tmp_path / "files", 2)
    port = free_port()
    with running(serve_argv(tmp_path / "archive", port, "--log-json"), port) as proc:
        stored = run_cli("store", f"127.0.0.1:{port}", *map(str, files))
        assert stored.returncode == 0, stored.stderr
        time.sleep(0.2)
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    events = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
    (association,) = [e for e in events if e["event"] == "association" and e["calling_ae"]]
    assert association["requests"] == {"C-STORE": 2}
    assert association["duration_s"] >= 0
    instances = [e for e in events if e["event"] == "stored"]
    assert len(instances) == 2
    assert all(e["peer"] == association["peer"] for e in instances)


def test_the_start_names_the_move_destinations_and_shared_titles(tmp_path: Path) -> None:
    # Walkthrough 6d: serve never showed where a C-MOVE may send, and two configured peers
    # with one AE title collapsed to the last without a word.
    import os

    config = tmp_path / "config.toml"
    config.write_text('[peers.a]\nhost = "127.0.0.1"\nport = 4001\naet = "DEST"\n\n'
                      '[peers.b]\nhost = "127.0.0.1"\nport = 4002\naet = "DEST"\n')  # fmt: skip
    port = free_port()
    env = {**os.environ, "NETDICOM_CONFIG": str(config)}
    argv = serve_argv(tmp_path / "archive", port, "--remote", "OTHER=127.0.0.1:4003")
    with running(argv, port, env=env) as proc:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    text = out.decode()
    assert "configured peers share the AE title DEST: a C-MOVE to it goes to [peers.b]" in text
    assert "C-MOVE destinations: DEST = 127.0.0.1:4002, OTHER = 127.0.0.1:4003" in text


def test_an_incoming_folder_on_another_file_system_stops_the_start(tmp_path: Path) -> None:
    # Walkthrough 6a: DIR/.incoming as a link to another disk: serve started, and refused
    # every store with A700 (a file cannot be moved into place across file systems).
    import os
    import shutil
    import tempfile

    if not os.path.isdir("/dev/shm") or os.stat("/dev/shm").st_dev == os.stat(tmp_path).st_dev:
        import pytest

        pytest.skip("no second file system to link to")
    elsewhere = Path(tempfile.mkdtemp(dir="/dev/shm"))
    try:
        archive = tmp_path / "archive"
        archive.mkdir()
        (archive / ".incoming").symlink_to(elsewhere)
        result = run_cli("serve", "--dir", str(archive), "--port", str(free_port()))
    finally:
        shutil.rmtree(elsewhere)
    assert result.returncode == 3
    assert f"{archive}/.incoming is on another file system than {archive}" in result.stderr


def test_a_script_learns_the_port_of_serve_port_0_from_the_listening_event(tmp_path: Path) -> None:
    # Walkthrough 7a: with --port 0 the port was only inside an English log message.
    import subprocess

    from tests.peers import NETDICOM

    argv = [*NETDICOM, "serve", "--dir", str(tmp_path), "--port", "0", "--log-json"]
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
    import threading

    deadline = threading.Timer(20, proc.kill)  # no event: the loop ends when serve does
    deadline.start()
    try:
        assert proc.stderr is not None
        events = (json.loads(line) for line in proc.stderr)
        event = next((e for e in events if e["event"] == "listening"), {})
        assert event["host"] == "127.0.0.1" and event["ae_title"] == "NETDICOM"
        assert event["directory"] == str(tmp_path)
        port = event["port"]
        assert isinstance(port, int) and port > 0
        assert run_cli("echo", f"127.0.0.1:{port}", "-q").returncode == 0
    finally:
        deadline.cancel()
        proc.terminate()
        proc.wait(20)


def test_log_json_says_why_serve_did_not_start_in_json(tmp_path: Path) -> None:
    # Walkthrough 7a: a port in use, a folder already served, a broken configuration: plain
    # text on stderr where a script read JSON lines.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("serve", "--dir", str(tmp_path), "--port", str(port), "--log-json")
    assert result.returncode == 3
    (record,) = [json.loads(line) for line in result.stderr.splitlines()]
    assert record["level"] == "error" and record["event"] == "log"
    assert (
        record["message"]
        == f"cannot listen on 127.0.0.1:{port}: the port is in use (another server on it?)"
    )
