"""C-ECHO against real peers on 127.0.0.1: dcmtk and pynetdicom, both directions."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.peers import (
    DCMTK_ENV,
    PYNETDICOM,
    free_port,
    have_dcmtk,
    run_cli,
    running,
    serve_argv,
)

pytestmark = pytest.mark.interop
needs_dcmtk = pytest.mark.skipif(not have_dcmtk(), reason="dcmtk is not installed")


@needs_dcmtk
def test_dcmtk_echoscu_to_serve(tmp_path: Path) -> None:
    port = free_port()
    with running(serve_argv(tmp_path, port), port) as server:
        result = subprocess.run(
            ["echoscu", "-aet", "DCMTK", "-aec", "NETDICOM", "127.0.0.1", str(port)],
            capture_output=True,
            text=True,
            env=DCMTK_ENV,
            timeout=30,
        )
        assert result.returncode == 0, result.stderr
        # Several C-ECHOs on one association, then release: still answered.
        result = subprocess.run(
            ["echoscu", "--repeat", "5", "127.0.0.1", str(port)],
            capture_output=True,
            text=True,
            env=DCMTK_ENV,
            timeout=30,
        )
        assert result.returncode == 0, result.stderr
        assert server.poll() is None


@needs_dcmtk
def test_netdicom_echo_to_dcmtk_storescp(tmp_path: Path) -> None:
    port = free_port()
    argv = ["storescp", "-aet", "STORESCP", "-od", str(tmp_path), str(port)]
    with running(argv, port, env=DCMTK_ENV):
        result = run_cli("echo", f"STORESCP@127.0.0.1:{port}", "--repeat", "3")
        assert result.returncode == 0, result.stderr
        assert "3/3 succeeded" in result.stdout


def test_pynetdicom_echoscu_to_serve(tmp_path: Path) -> None:
    port = free_port()
    with running(serve_argv(tmp_path, port), port):
        result = subprocess.run(
            [*PYNETDICOM, "echoscu", "127.0.0.1", str(port), "-aec", "NETDICOM"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "error" not in (result.stdout + result.stderr).lower()


def test_netdicom_echo_to_pynetdicom_echoscp() -> None:
    port = free_port()
    with running([*PYNETDICOM, "echoscp", str(port)], port):
        result = run_cli("echo", f"127.0.0.1:{port}")
        assert result.returncode == 0, result.stderr
        assert "Success" in result.stdout or "success" in result.stdout.lower()
