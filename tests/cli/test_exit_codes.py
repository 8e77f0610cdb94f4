"""Every documented exit code, end to end: the real `netdicom` command as a subprocess against
real or scripted peers on 127.0.0.1 (README "Exit codes", netdicom.cli.exit_codes)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from netdicom.cli.exit_codes import ExitCode
from tests.dicomfiles import make_dataset, make_files, write_instance
from tests.peers import NETDICOM, free_port, run_cli, running, serve_argv


@contextlib.contextmanager
def scripted_peer(behaviour: Callable[[socket.socket], None]) -> Iterator[int]:
    """A TCP listener whose first connection is handed to `behaviour`."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]

    def run() -> None:
        with contextlib.suppress(OSError):
            conn, _ = listener.accept()
            with conn:
                behaviour(conn)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        listener.close()
        thread.join(5)


def _silent(conn: socket.socket) -> None:
    conn.recv(65536)  # the A-ASSOCIATE-RQ, never answered
    time.sleep(5)


def _abort_after_rq(conn: socket.socket) -> None:
    conn.recv(65536)
    # A-ABORT, source 2 (service provider), reason 0 (PS3.8 Table 9-26)
    conn.sendall(bytes([0x07, 0, 0, 0, 0, 4, 0, 0, 2, 0]))
    time.sleep(1)


def test_0_success(tmp_path: Path) -> None:
    port = free_port()
    with running(serve_argv(tmp_path, port), port):
        assert run_cli("echo", f"127.0.0.1:{port}").returncode == ExitCode.OK == 0


def test_1_part_of_the_work_failed(tmp_path: Path) -> None:
    good = make_files(tmp_path / "in", 1)
    odd = write_instance(tmp_path / "in" / "odd.dcm", make_dataset(sop_class="1.2.3.4.5.6.7"))
    port = free_port()
    with running(serve_argv(tmp_path / "archive", port, "--no-unknown"), port):
        result = run_cli("store", f"127.0.0.1:{port}", str(good[0]), str(odd), "--no-progress")
    assert result.returncode == ExitCode.FAILED == 1, result.stdout + result.stderr
    assert "1.2.3.4.5.6.7" in result.stdout + result.stderr


def test_2_usage_error() -> None:
    result = run_cli("echo", "no-port-here:")
    assert result.returncode == ExitCode.USAGE == 2
    assert run_cli("find", "127.0.0.1:1", "--level", "nonsense").returncode == 2


@pytest.mark.parametrize(
    "option",
    [("--aet", "WAYTOOLONGAETITLE1"), ("--aet", ""), ("--aet", "A\\B"), ("--max-pdu", "6")],
)
def test_2_serve_with_an_unusable_ae_title_or_max_pdu(
    tmp_path: Path, option: tuple[str, str]
) -> None:
    # It started, then aborted every association with an internal error.
    result = run_cli("serve", "--dir", str(tmp_path / "a"), "--port", "0", *option)
    assert result.returncode == ExitCode.USAGE, result.stderr
    assert option[0] in result.stderr and not (tmp_path / "a").exists()


def test_3_bad_or_missing_input(tmp_path: Path) -> None:
    result = run_cli("store", "127.0.0.1:1", str(tmp_path / "missing.dcm"))
    assert result.returncode == ExitCode.BAD_INPUT == 3
    assert "missing.dcm" in result.stderr


def test_4_connection_refused() -> None:
    result = run_cli("echo", f"127.0.0.1:{free_port()}")
    assert result.returncode == ExitCode.CONNECT == 4
    assert "refused" in result.stderr


def test_5_association_rejected_with_a_hint(tmp_path: Path) -> None:
    port = free_port()
    with running(serve_argv(tmp_path, port, "--strict-aet"), port):
        result = run_cli("echo", f"netdicom@127.0.0.1:{port}")
    assert result.returncode == ExitCode.REJECTED == 5
    assert "called AE title not recognized (we called 'netdicom')" in result.stderr
    assert "hint:" in result.stderr and "case" in result.stderr


def test_6_aborted() -> None:
    with scripted_peer(_abort_after_rq) as port:
        result = run_cli("echo", f"127.0.0.1:{port}", "--timeout", "5")
    assert result.returncode == ExitCode.ABORTED == 6
    assert "abort" in result.stderr


def test_7_timeout() -> None:
    with scripted_peer(_silent) as port:
        started = time.monotonic()
        result = run_cli("echo", f"127.0.0.1:{port}", "--timeout", "1")
    assert result.returncode == ExitCode.TIMEOUT == 7
    assert time.monotonic() - started < 10


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_130_interrupted() -> None:
    asked = threading.Event()

    def silent(conn: socket.socket) -> None:
        conn.recv(65536)  # the A-ASSOCIATE-RQ, never answered
        asked.set()
        time.sleep(5)

    with scripted_peer(silent) as port:
        proc = subprocess.Popen(
            [*NETDICOM, "echo", f"127.0.0.1:{port}", "--timeout", "30"],
            stderr=subprocess.PIPE,
            text=True,
            # A shell without job control starts background jobs with SIGINT ignored, and the
            # test suite may run as one: give the client the disposition a terminal gives it.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        # Interrupt once it waits for the A-ASSOCIATE-AC, however long start-up took (a
        # fixed sleep raced start-up on a loaded CI machine without cached bytecode).
        assert asked.wait(30)
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == ExitCode.INTERRUPTED == 130, err
    assert "Traceback" not in err


def _interrupted_run(patch: str) -> subprocess.CompletedProcess[str]:
    """`netdicom` run through its entry point after `patch` (Python code that makes some step
    of the start raise KeyboardInterrupt, as Ctrl-C would)."""
    code = f"{patch}\nfrom netdicom.launch import main\nmain()\n"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def test_130_when_interrupted_while_starting() -> None:
    # Ctrl-C while Python imports the CLI (the first ~100 ms): 130 and a word, no traceback.
    from netdicom import launch

    assert launch._INTERRUPTED == ExitCode.INTERRUPTED
    out = _interrupted_run(
        "import builtins\n"
        "real = builtins.__import__\n"
        "def interrupted(name, *args, **kwargs):\n"
        "    if name == 'netdicom.cli.app':\n"
        "        raise KeyboardInterrupt\n"
        "    return real(name, *args, **kwargs)\n"
        "builtins.__import__ = interrupted"
    )
    assert out.returncode == 130, out.stderr
    assert "interrupted" in out.stderr and "Traceback" not in out.stderr


def test_130_when_interrupted_while_the_command_line_is_parsed() -> None:
    # Ctrl-C after the imports, while Typer parses the arguments (before our command runs):
    # Typer turns it into exit 130 itself; no traceback.
    out = _interrupted_run(
        "import sys\n"
        "import typer._click.core as core\n"
        "def interrupted(self, ctx, args):\n"
        "    raise KeyboardInterrupt\n"
        "core.Command.parse_args = interrupted\n"
        "sys.argv = ['netdicom', 'echo', '127.0.0.1:1']"
    )
    assert out.returncode == 130, out.stderr
    assert "Traceback" not in out.stderr


def _run_with_stdout_closed(*args: str) -> subprocess.CompletedProcess[str]:
    """`netdicom ARGS` with standard output a pipe whose reader has exited already (as `head`
    does once it has its lines): every write to it fails with EPIPE."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [*NETDICOM, *args], stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=60
        )
    finally:
        os.close(write_end)


def test_141_when_standard_output_is_closed(tmp_path: Path) -> None:
    # `netdicom find ... | head -1`: the command stops with the code cat or grep give there,
    # one line on stderr, no traceback (not exit 3, "bad input", with Errno 32 as before).
    files = [str(path) for path in make_files(tmp_path / "in", 3)]
    port = free_port()
    with running(serve_argv(tmp_path / "archive", port), port):
        assert run_cli("store", f"127.0.0.1:{port}", *files, "-q").returncode == 0
        found = _run_with_stdout_closed("find", f"127.0.0.1:{port}", "PatientName=*")
        stored = _run_with_stdout_closed("store", f"127.0.0.1:{port}", *files, "--json")
    for result in (found, stored):
        assert result.returncode == ExitCode.OUTPUT_CLOSED == 141, result.stderr
        assert "standard output was closed" in result.stderr
        assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr


def test_closed_streams_lose_words_not_results_or_exit_codes(tmp_path: Path) -> None:
    # Walkthrough 7a: with stderr closed (`2>&-`) every command died on its first progress
    # line ("internal error", exit 1: a refused echo, a good find); after `2>&1 | grep -q`
    # a get that had stored everything exited 1; with stdout closed (`>&-`) find --csv was an
    # internal error and echo --json exited 0, its result lost.
    import shlex

    files = [str(path) for path in make_files(tmp_path / "in", 3)]
    port = free_port()
    nd = shlex.join(NETDICOM)

    def sh(line: str) -> str:
        result = subprocess.run(["bash", "-c", line], capture_output=True, text=True, timeout=60)
        return result.stdout.strip()

    with running(serve_argv(tmp_path / "archive", port), port):
        assert run_cli("store", f"127.0.0.1:{port}", *files, "-q").returncode == 0
        refused = sh(f"{nd} echo 127.0.0.1:{free_port()} 2>&-; echo $?")
        found = sh(f"{nd} find 127.0.0.1:{port} PatientID= --csv 2>&-; echo $?")
        grepped = sh(f"{nd} get 127.0.0.1:{port} PatientID=PAT001 --out {tmp_path / 'out'} "
                     "2>&1 | grep -q C-FIND; echo ${PIPESTATUS[0]}")  # fmt: skip
        no_stdout = sh(f"{nd} find 127.0.0.1:{port} PatientID= --csv >&-; echo $?")
        no_json = sh(f"{nd} echo 127.0.0.1:{port} --json >&-; echo $?")
    assert refused == "4"
    assert found.splitlines()[-1] == "0" and "PAT001" in found
    assert grepped == "0" and len(list((tmp_path / "out").rglob("*.dcm"))) == 3
    assert no_stdout == "141" and no_json == "141"


def test_3_when_serve_cannot_listen(tmp_path: Path) -> None:
    # The port is taken: one line that says so (was "[Errno 98] error while attempting to
    # bind on address ..."), exit 3 like other bad input, nothing listening afterwards.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        archive = tmp_path / "archive"
        result = run_cli("serve", "--dir", str(archive), "--port", str(port))
    assert result.returncode == ExitCode.BAD_INPUT == 3, result.stderr
    assert f"cannot listen on 127.0.0.1:{port}: the port is in use" in result.stderr
    assert "Traceback" not in result.stderr and "Errno" not in result.stderr
    # Checked before the index is built (minutes on a large archive): no folder was made.
    assert not archive.exists()


def test_echo_json_reports_a_failure_too() -> None:
    # Nothing listens: exit 4 as without --json, and stdout still holds the one object a
    # script parses, with the reason (was: empty stdout).
    import json

    port = free_port()
    result = run_cli("echo", f"127.0.0.1:{port}", "--json")
    assert result.returncode == ExitCode.CONNECT == 4, result.stderr
    answer = json.loads(result.stdout)
    assert answer["echoes"] == 0 and answer["status"] is None
    assert "refused" in answer["error"]


def test_echo_json_success_has_no_error(tmp_path: Path) -> None:
    import json

    port = free_port()
    with running(serve_argv(tmp_path, port), port):
        result = run_cli("echo", f"127.0.0.1:{port}", "--json")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["status"] == 0 and answer["succeeded"] == 1 and answer["error"] is None


def test_3_when_another_serve_has_the_folder(tmp_path: Path) -> None:
    # Two servers on one folder would sweep each other's temporary files and write one index
    # from two processes; nothing stopped the second.
    port = free_port()
    with running(serve_argv(tmp_path, port), port) as first:
        second = run_cli("serve", "--dir", str(tmp_path), "--port", str(free_port()))
        assert first.poll() is None  # the first goes on serving
    assert second.returncode == ExitCode.BAD_INPUT == 3, second.stderr
    assert f"served already by another netdicom serve (process {first.pid})" in second.stderr


def test_3_when_the_folder_cannot_be_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A read-only archive: the lock file is made first, and failed with a bare
    # "[Errno 30] Read-only file system: '…/serve.lock'". (As root, permissions do not stop
    # a write: the failure is simulated where the lock file is opened.)
    import errno
    import os

    from netdicom.archive import lock

    real_open = os.open

    def read_only(path: object, *args: object, **kwargs: object) -> int:
        if str(path).endswith(lock.LOCK_NAME):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(lock.os, "open", read_only)
    with pytest.raises(lock.FolderInUse, match="read-only, or not writable by this user"):
        lock.lock_folder(tmp_path)


def test_3_when_another_serve_has_the_folder_and_its_index_folder_was_deleted(
    tmp_path: Path,
) -> None:
    # Walkthrough 6a: the README says to delete DIR/.netdicom to rebuild the index; the lock
    # file went with it, and a second serve started on the same folder.
    import shutil

    port = free_port()
    with running(serve_argv(tmp_path, port), port) as first:
        shutil.rmtree(tmp_path / ".netdicom")
        second = run_cli("serve", "--dir", str(tmp_path), "--port", str(free_port()))
        assert first.poll() is None
    assert second.returncode == ExitCode.BAD_INPUT == 3, second.stderr
    assert "served already by another netdicom serve" in second.stderr
    assert "read-only" not in second.stderr  # it is held, not unwritable


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (b"HTTP/1.1 400 Bad Request\r\n\r\n", "a web server answered, not a DICOM port"),
        (b"SSH-2.0-OpenSSH_9.6\r\n", "an SSH server answered"),
        (b"\x15\x03\x03\x00\x02\x02\x46", "it speaks TLS (add --tls)"),
    ],
)
def test_a_peer_that_speaks_another_protocol_is_named(answer: bytes, words: str) -> None:
    # "unknown PDU type 0x48" left the user to work out that 0x48 is the H of HTTP/1.1.
    def behaviour(conn: socket.socket) -> None:
        conn.recv(65536)
        conn.sendall(answer)
        with contextlib.suppress(OSError):
            conn.recv(65536)

    with scripted_peer(behaviour) as port:
        result = run_cli("echo", f"127.0.0.1:{port}", "--timeout", "5")
    assert result.returncode == 6, result.stderr
    assert words in result.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["echo", "127.0.0.1:1", "--timeout", "nan"],
        ["move", "127.0.0.1:1", "StudyInstanceUID=1.2", "--listen", "1", "--grace", "inf"],
        ["serve", "--dir", "{tmp}", "--idle-timeout", "nan"],
        ["serve", "--dir", "{tmp}", "--dimse-timeout", "inf"],
    ],
)
def test_seconds_that_are_not_a_number_are_a_usage_error(tmp_path: Path, argv: list[str]) -> None:
    # Walkthrough 7a: nan passed every range check; echo timed out at once against a live
    # peer, serve aborted every association.
    result = run_cli(*(arg.format(tmp=tmp_path) for arg in argv))
    assert result.returncode == 2
    assert "is not a number of seconds" in result.stderr
