"""Helpers to run real peers (netdicom serve, dcmtk, pynetdicom) as processes on 127.0.0.1."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

NETDICOM = [sys.executable, "-m", "netdicom"]
PYNETDICOM = [sys.executable, "-m", "pynetdicom"]


def _dcmtk_before_pynetdicom() -> None:
    """pynetdicom 3 installs console scripts named like dcmtk's tools (storescp, findscu, ...)
    beside this interpreter; with the venv activated they would shadow dcmtk, which is what
    the tests mean by those names. Take that folder off PATH (we run Python by full path)."""
    scripts = Path(sys.executable).parent
    with contextlib.suppress(OSError), (scripts / "storescp").open("rb") as first:
        if first.read(2) == b"#!":
            kept = [d for d in os.environ.get("PATH", "").split(os.pathsep) if Path(d) != scripts]
            os.environ["PATH"] = os.pathsep.join(kept)


_dcmtk_before_pynetdicom()
# dcmtk as shipped waits on Nagle's algorithm; our tests measure correctness, not its defaults.
DCMTK_ENV = {**os.environ, "TCP_NODELAY": "1"}


def have_dcmtk() -> bool:
    return shutil.which("storescp") is not None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            raise RuntimeError(f"peer exited with {proc.returncode} before listening:\n{out}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on port {port} after {timeout} s")


@contextlib.contextmanager
def running(
    argv: Sequence[str],
    port: int,
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Start a listening peer, wait until it accepts connections, stop it afterwards."""
    proc = subprocess.Popen(
        list(argv),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=cwd,
    )
    try:
        wait_for_port(port, proc)
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def serve_argv(directory: Path, port: int, *extra: str) -> list[str]:
    return [*NETDICOM, "serve", "--dir", str(directory), "--port", str(port), *extra]


def run_cli(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*NETDICOM, *args], capture_output=True, text=True, timeout=timeout, check=False
    )
