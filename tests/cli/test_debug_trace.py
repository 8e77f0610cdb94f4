"""`--debug`: a PDU-level trace on stderr, on clients and on serve; stdout stays clean."""

from __future__ import annotations

from pathlib import Path

from tests.peers import free_port, run_cli, running, serve_argv


def test_echo_debug_traces_every_pdu(tmp_path: Path) -> None:
    port = free_port()
    with running(serve_argv(tmp_path, port, "--debug"), port) as proc:
        result = run_cli("echo", f"127.0.0.1:{port}", "--debug", "--json")
        proc.terminate()
        served, _ = proc.communicate(timeout=20)
    assert result.returncode == 0
    assert result.stdout.startswith("{")  # the trace never goes to stdout
    sent = [line.split("] ", 1)[1] for line in result.stderr.splitlines() if "] " in line]
    assert sent[0].startswith("-> A-ASSOCIATE-RQ NETDICOM -> ANY-SCP")
    assert sent[1].startswith("<- A-ASSOCIATE-AC")
    assert any(s.startswith("-> P-DATA-TF context 1, command (last)") for s in sent)
    assert sent[-2:] == ["-> A-RELEASE-RQ", "<- A-RELEASE-RP"]
    log = served.decode()
    assert "<- A-ASSOCIATE-RQ" in log and "-> A-RELEASE-RP" in log
    assert log.count("NETDICOM -> ANY-SCP: released") == 1  # one line per event, no duplicates
