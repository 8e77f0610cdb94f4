"""Ctrl-C (SIGINT) during a client command: it says what it did, then exits 130, without a
traceback. Each signal is sent once the peer has seen what it waits for (no fixed sleeps)."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from netdicom.core.dimse import CEchoRQ, CEchoRSP, status
from netdicom.core.dimse.messages_qr import CCancelRQ, CGetRSP, CMoveRSP
from netdicom.core.pdu import AbortPDU
from tests.cli.test_exit_codes import scripted_peer
from tests.cli.test_get_cli import ScriptedQR, retrieve_rsp
from tests.dicomfiles import make_files
from tests.peers import NETDICOM, free_port, running, serve_argv

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

INTERRUPTED = "interrupted (Ctrl-C)"


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*NETDICOM, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A shell without job control starts background jobs with SIGINT ignored: give the
        # client the disposition a terminal gives it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _wait(event: threading.Event, proc: subprocess.Popen[str]) -> None:
    if not event.wait(30):
        proc.kill()
        _, err = proc.communicate()
        raise AssertionError(f"the peer never got there; exit {proc.returncode}:\n{err}")


class _Marks:
    def __init__(self) -> None:
        self.ready = threading.Event()  # time for the first Ctrl-C
        self.cancelled = threading.Event()  # the C-CANCEL-RQ arrived
        self.aborted = threading.Event()  # the A-ABORT arrived


def _cancel_then_wait(qr: ScriptedQR, marks: _Marks) -> None:
    """Take the C-CANCEL-RQ, never answer it, see the A-ABORT."""
    _, cancel = qr.request()
    assert isinstance(cancel, CCancelRQ), cancel
    marks.cancelled.set()
    with contextlib.suppress(OSError, ConnectionError):
        if isinstance(qr.read(), AbortPDU):
            marks.aborted.set()


def _get_peer(marks: _Marks) -> Callable[[socket.socket], None]:
    def behaviour(conn: socket.socket) -> None:
        qr = ScriptedQR(conn)
        context_id, request = qr.request()
        qr.send(context_id, retrieve_rsp(CGetRSP, request, status.PENDING, 5, 0, 0, 0))
        for number in range(3):
            qr.store(f"1.2.826.0.1.77.{number}")  # each answered: stored on the client
        marks.ready.set()
        _cancel_then_wait(qr, marks)

    return behaviour


def _move_peer(marks: _Marks) -> Callable[[socket.socket], None]:
    def behaviour(conn: socket.socket) -> None:
        qr = ScriptedQR(conn)
        context_id, request = qr.request()
        qr.send(context_id, retrieve_rsp(CMoveRSP, request, status.PENDING, 5, 0, 0, 0))
        marks.ready.set()
        _cancel_then_wait(qr, marks)

    return behaviour


def _interrupt_twice(proc: subprocess.Popen[str], marks: _Marks) -> tuple[str, str]:
    _wait(marks.ready, proc)
    proc.send_signal(signal.SIGINT)
    _wait(marks.cancelled, proc)  # the second Ctrl-C while the C-CANCEL is outstanding
    proc.send_signal(signal.SIGINT)
    return proc.communicate(timeout=30)


@pytest.mark.parametrize("json_output", [False, True])
def test_get_second_ctrl_c_aborts_and_exits_130(tmp_path: Path, json_output: bool) -> None:
    marks = _Marks()
    out = tmp_path / "out"
    with scripted_peer(_get_peer(marks)) as port:
        proc = _start("get", f"127.0.0.1:{port}", "StudyInstanceUID=1.2.3", "--out", str(out),
                      "--timeout", "20", *(["--json"] if json_output else []))  # fmt: skip
        stdout, err = _interrupt_twice(proc, marks)
        assert marks.aborted.wait(5), err
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "Exception" not in err
    assert "aborting the association (A-ABORT)" in err
    assert len(list(out.rglob("*.dcm"))) == 3
    if json_output:
        summary = json.loads(stdout)
        assert summary["stored"] == 3 and summary["error"] == INTERRUPTED
    else:
        assert "3 stored in" in err
        assert "association aborted locally" not in err


def test_move_listen_second_ctrl_c_aborts_and_exits_130(tmp_path: Path) -> None:
    marks = _Marks()
    out = tmp_path / "out"
    with scripted_peer(_move_peer(marks)) as port:
        proc = _start("move", f"127.0.0.1:{port}", "StudyInstanceUID=1.2.3", "--listen",
                      str(free_port()), "--listen-host", "127.0.0.1", "--out", str(out),
                      "--grace", "0", "--timeout", "20", "--json")  # fmt: skip
        stdout, err = _interrupt_twice(proc, marks)
        assert marks.aborted.wait(5), err
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    summary = json.loads(stdout)
    assert summary["stored"] == 0 and summary["error"] == INTERRUPTED


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_get_one_ctrl_c_json_says_interrupted(tmp_path: Path, signum: int) -> None:
    # A cancel by Ctrl-C is not one by --max: the JSON tells them apart, not only the exit code.
    # SIGTERM and SIGHUP (timeout, systemd, a cancelled CI job) are a Ctrl-C: they killed the
    # client at once, no C-CANCEL, no report, no JSON, exit 143 (walkthrough 6d).
    marks = _Marks()

    def behaviour(conn: socket.socket) -> None:
        qr = ScriptedQR(conn)
        context_id, request = qr.request()
        qr.send(context_id, retrieve_rsp(CGetRSP, request, status.PENDING, 5, 0, 0, 0))
        qr.store("1.2.826.0.1.77.9")
        marks.ready.set()
        _, cancel = qr.request()
        assert isinstance(cancel, CCancelRQ), cancel
        qr.send(context_id, retrieve_rsp(CGetRSP, request, status.CANCEL, 4, 1, 0, 0))
        qr.release()

    with scripted_peer(behaviour) as port:
        proc = _start("get", f"127.0.0.1:{port}", "StudyInstanceUID=1.2.3", "--out",
                      str(tmp_path), "--timeout", "20", "--json")  # fmt: skip
        _wait(marks.ready, proc)
        proc.send_signal(signum)
        stdout, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    summary = json.loads(stdout)
    # Named: a CI job's log blamed a Ctrl-C nobody pressed.
    said = (
        INTERRUPTED if signum == signal.SIGINT else f"interrupted ({signal.Signals(signum).name})"
    )
    assert summary["stored"] == 1 and summary["error"] == said
    assert f"netdicom: {said}: sending C-CANCEL" in err
    assert summary["requests"][0]["cancelled"] is True


@pytest.mark.parametrize("command", ["get", "move"])
def test_ctrl_c_while_the_association_is_pending_still_prints_the_json(
    tmp_path: Path, command: str
) -> None:
    # A peer that takes the connection and never answers the A-ASSOCIATE-RQ: Ctrl-C came
    # before our handler was in place, and --json printed nothing (`| jq` read no input).
    marks = _Marks()

    def behaviour(conn: socket.socket) -> None:
        conn.recv(65536)  # the A-ASSOCIATE-RQ, never answered
        marks.ready.set()
        with contextlib.suppress(OSError):
            conn.recv(65536)  # until the client goes

    where = ["--out", str(tmp_path)] if command == "get" else ["--dest", "ELSEWHERE"]
    with scripted_peer(behaviour) as port:
        proc = _start(command, f"127.0.0.1:{port}", "StudyInstanceUID=1.2.3", *where,
                      "--timeout", "20", "--json")  # fmt: skip
        _wait(marks.ready, proc)
        proc.send_signal(signal.SIGINT)
        stdout, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    summary = json.loads(stdout)
    assert summary["error"] == INTERRUPTED and summary["requests"] == []


@pytest.mark.parametrize("json_output", [False, True])
def test_store_ctrl_c_prints_the_summary(tmp_path: Path, json_output: bool) -> None:
    files = tmp_path / "files"
    make_files(files, 1500, study_uid="1.2.826.0.1.78")
    port = free_port()
    served = tmp_path / "served"
    with running(serve_argv(served, port, "--no-fsync"), port):
        proc = _start("store", f"127.0.0.1:{port}", "-r", str(files), "--window", "1",
                      *(["--json"] if json_output else []))  # fmt: skip
        # Two instances in place on the peer: with --window 1 the second is sent only once the
        # first was answered, so at least one is stored when Ctrl-C comes (one in place could
        # still be unanswered: "0 stored" under load).
        deadline = time.monotonic() + 30
        while len(list(served.rglob("*.dcm"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        stdout, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    if json_output:
        lines = stdout.splitlines()
        summary = json.loads(lines[-1])["summary"]
        assert summary["files"] == 1500 and summary["error"] == INTERRUPTED
        assert 0 < summary["stored"] < 1500
        assert summary["stored"] + summary["failed"] == 1500
        assert len(lines) == 1501  # every file has its line
    else:
        assert "Stored " in stdout and " of 1500 instances on " in stdout, stdout[:500]
        assert "not sent: interrupted (Ctrl-C)" in stdout


def _unanswered_store_peer(marks: _Marks) -> Callable[[socket.socket], None]:
    def behaviour(conn: socket.socket) -> None:
        qr = ScriptedQR(conn)  # grants no window: one C-STORE at a time
        qr.request()  # the first C-STORE-RQ and all its data set, never answered
        marks.ready.set()
        with contextlib.suppress(OSError, ConnectionError):
            if isinstance(qr.read(), AbortPDU):
                marks.aborted.set()

    return behaviour


def test_store_ctrl_c_tells_sent_but_unanswered_from_not_sent(tmp_path: Path) -> None:
    # The file the peer took in whole may be stored there: "not sent" would be false.
    make_files(tmp_path, 3, study_uid="1.2.826.0.1.79")
    marks = _Marks()
    with scripted_peer(_unanswered_store_peer(marks)) as port:
        proc = _start("store", f"127.0.0.1:{port}", "-r", str(tmp_path), "--json")
        _wait(marks.ready, proc)
        proc.send_signal(signal.SIGINT)
        stdout, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert marks.aborted.is_set()
    *files, summary = (json.loads(line) for line in stdout.splitlines())
    reasons = sorted(f["reason"] for f in files)
    assert reasons == [
        "interrupted after it was sent, before the peer answered: it may have been stored",
        f"not sent: {INTERRUPTED}",
        f"not sent: {INTERRUPTED}",
    ], reasons
    assert summary["summary"]["failed"] == 3


def _find_peer(marks: _Marks) -> Callable[[socket.socket], None]:
    def behaviour(conn: socket.socket) -> None:
        from pydicom.dataset import Dataset

        from netdicom.core import uids
        from netdicom.core.dimse import CFindRSP
        from netdicom.services.find_scp import encode_identifier

        qr = ScriptedQR(conn)
        context_id, request = qr.request()
        match = Dataset()
        match.QueryRetrieveLevel = "STUDY"
        match.PatientID = "PAT1"
        data = encode_identifier(match, uids.IMPLICIT_VR_LE)
        for _ in range(2):
            pending = CFindRSP(request.message_id, status.PENDING,
                               request.affected_sop_class_uid, has_dataset=True)  # fmt: skip
            qr.send(context_id, pending, data)
        marks.ready.set()
        _, cancel = qr.request()
        assert isinstance(cancel, CCancelRQ), cancel
        marks.cancelled.set()
        qr.send(context_id, CFindRSP(request.message_id, status.CANCEL,
                                     request.affected_sop_class_uid))  # fmt: skip
        with contextlib.suppress(OSError, ConnectionError):
            qr.read()  # the A-RELEASE-RQ

    return behaviour


def test_find_ctrl_c_sends_c_cancel_then_exits_130() -> None:
    # Was: straight to A-ABORT, so the peer logged an aborted association, not a cancel.
    marks = _Marks()
    with scripted_peer(_find_peer(marks)) as port:
        proc = _start("find", f"127.0.0.1:{port}", "PatientID=PAT1", "--csv", "--no-defaults",
                      "PatientID=", "--timeout", "20")  # fmt: skip
        _wait(marks.ready, proc)
        proc.send_signal(signal.SIGINT)
        stdout, err = proc.communicate(timeout=30)
    assert marks.cancelled.is_set()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    # Matches read before the C-CANCEL went are shown; those after it are dropped.
    header, *rows = stdout.splitlines()
    assert header == "PatientID" and set(rows) <= {"PAT1"}
    count = len(rows)
    assert f"{count} match{'es' if count != 1 else ''} (cancelled: interrupted)" in err, err


def _echo_peer(answered: threading.Event) -> Callable[[socket.socket], None]:
    def behaviour(conn: socket.socket) -> None:
        qr = ScriptedQR(conn)
        for _ in range(3):
            context_id, request = qr.request()
            assert isinstance(request, CEchoRQ), request
            qr.send(context_id, CEchoRSP(request.message_id, status.SUCCESS))
        # The 4th C-ECHO-RQ (sent once the 3rd reply was read), never answered.
        _, request = qr.request()
        assert isinstance(request, CEchoRQ), request
        answered.set()
        with contextlib.suppress(OSError, ConnectionError):
            qr.read()  # the A-ABORT

    return behaviour


@pytest.mark.parametrize("json_output", [False, True])
def test_echo_repeat_ctrl_c_prints_the_statistics(json_output: bool) -> None:
    answered = threading.Event()
    with scripted_peer(_echo_peer(answered)) as port:
        proc = _start("echo", f"127.0.0.1:{port}", "--repeat", "100", "--timeout", "20",
                      *(["--json"] if json_output else []))  # fmt: skip
        _wait(answered, proc)
        proc.send_signal(signal.SIGINT)
        stdout, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    if json_output:
        summary = json.loads(stdout)
        assert summary["echoes"] == summary["succeeded"] == 3
        assert summary["error"] == INTERRUPTED and summary["round_trip_ms"]["max"] > 0
    else:
        assert "3/3 succeeded; round trip min" in stdout


def test_ctrl_c_after_an_interrupted_command_is_ignored() -> None:
    # Once interrupted, the command is on its way out with 130: another Ctrl-C must not raise
    # KeyboardInterrupt in what is left (its output, the interpreter's shutdown).
    import asyncio
    import os

    import typer

    from netdicom.cli.common import run

    async def interrupted() -> None:
        os.kill(os.getpid(), signal.SIGINT)
        await asyncio.sleep(10)

    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal
    try:
        with pytest.raises(typer.Exit) as exited:
            run(interrupted(), debug=False, quiet=True)
        assert exited.value.exit_code == 130
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
        except KeyboardInterrupt:
            pytest.fail("a Ctrl-C after the interrupted command raised KeyboardInterrupt")
    finally:
        signal.signal(signal.SIGINT, before)


def test_after_a_sigterm_run_sigterm_is_not_left_ignored() -> None:
    # An ignored signal is inherited by every program started later: after one interrupted
    # command in this process, every peer a test started outlived its SIGTERM by 10 s.
    import asyncio
    import os

    import typer

    from netdicom.cli.common import run

    before = signal.getsignal(signal.SIGTERM)

    async def interrupted() -> int:
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.sleep(5)
        return 0

    with pytest.raises(typer.Exit) as stopped:
        run(interrupted(), debug=False, quiet=True)
    assert stopped.value.exit_code == 130
    assert signal.getsignal(signal.SIGTERM) == before
    assert signal.getsignal(signal.SIGTERM) is not signal.SIG_IGN
