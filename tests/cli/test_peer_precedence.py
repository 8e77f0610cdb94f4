"""Which called AE title a client command uses (AET@ in PEER, then --aec, then the configured
peer's aet, then ANY-SCP), checked at a real `netdicom serve`; and where a peer name came from
when it names no configured peer."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from netdicom.cli.app import build_app
from netdicom.cli.common import resolve_peer
from netdicom.services.peer import BadPeer, Peer
from tests.peers import NETDICOM, running, serve_argv


def _port() -> int:
    # Ports this work may use (12450-12499), the first free one of a slice of them.
    for port in range(12460, 12480):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.skip("no free port in 12460-12479")


def _config(tmp_path: Path, port: int) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[peers.pacs]\nhost = "127.0.0.1"\nport = {port}\naet = "CONFIGAE"\n\n'
        f'[peers.bare]\nhost = "127.0.0.1"\nport = {port}\n'
    )
    return path


def _echo(config: Path, *args: str, env_aet: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NETDICOM_CONFIG": str(config)}
    env.pop("NETDICOM_PEER", None)
    env.pop("NETDICOM_AET", None)
    if env_aet is not None:
        env["NETDICOM_AET"] = env_aet
    return subprocess.run(
        [*NETDICOM, "echo", *args], capture_output=True, text=True, env=env, timeout=30
    )


def _titles_logged(serve: subprocess.Popen[bytes], field: str) -> list[str]:
    """The `field` AE title of each association serve --log-json logged. (A first connection
    with no A-ASSOCIATE-RQ is running()'s check that serve listens: left out.)"""
    assert serve.stdout is not None
    logged = [json.loads(line) for line in serve.stdout.read().decode().splitlines()]
    return [e[field] for e in logged if e.get("event") == "association" and e[field]]


def test_called_ae_title_precedence_at_a_real_peer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = _port()
    config = _config(tmp_path, port)
    runs = [
        ("pacs", "--aec", "OPTIONAE"),  # --aec beats the configured aet (was: CONFIGAE)
        ("pacs",),  # the configured aet beats the default
        (f"PEERAE@127.0.0.1:{port}", "--aec", "OPTIONAE"),  # AET@ beats --aec
        ("bare", "--aec", "OPTIONAE"),  # no configured aet: --aec
        ("bare",),  # nothing given: the default
    ]
    with running(serve_argv(tmp_path / "archive", port, "--log-json"), port) as serve:
        for args in runs:
            result = _echo(config, *args)
            assert result.returncode == 0, result.stderr
        # Once more in this process: what --aec set for that command is not left behind.
        monkeypatch.setenv("NETDICOM_CONFIG", str(config))
        monkeypatch.delenv("NETDICOM_PEER", raising=False)
        inline = CliRunner().invoke(build_app("echo"), ["echo", "pacs", "--aec", "OPTIONAE"])
        assert inline.exit_code == 0, inline.output
        assert resolve_peer("pacs") == Peer("127.0.0.1", port, "CONFIGAE")
    called = _titles_logged(serve, "called_ae")
    assert called == ["OPTIONAE", "CONFIGAE", "PEERAE", "OPTIONAE", "ANY-SCP", "OPTIONAE"]


def test_calling_ae_title_precedence_at_a_real_peer(tmp_path: Path) -> None:
    # Walkthrough 6d: a PACS knows its callers by AE title, and our own title could only be
    # given as --aet to every command. Now: --aet, $NETDICOM_AET, the peer's calling_aet, the
    # file's calling_aet, NETDICOM.
    port = _port()
    config = tmp_path / "config.toml"
    config.write_text(
        f'calling_aet = "FILEWS"\n[peers.pacs]\nhost = "127.0.0.1"\nport = {port}\n'
        f'calling_aet = "PACSWS"\n\n[peers.bare]\nhost = "127.0.0.1"\nport = {port}\n'
    )
    runs: list[tuple[tuple[str, ...], str | None]] = [
        (("pacs",), None),  # the peer's calling_aet
        (("bare",), None),  # the file's
        ((f"127.0.0.1:{port}",), None),  # HOST:PORT: the file's too
        (("pacs",), "ENVWS"),  # $NETDICOM_AET beats the file
        (("pacs", "--aet", "OPTIONWS"), "ENVWS"),  # --aet beats $NETDICOM_AET
    ]
    with running(serve_argv(tmp_path / "archive", port, "--log-json"), port) as serve:
        for args, env_aet in runs:
            result = _echo(config, *args, env_aet=env_aet)
            assert result.returncode == 0, result.stderr
        no_file = _echo(tmp_path / "none.toml", f"127.0.0.1:{port}")
        assert no_file.returncode == 0, no_file.stderr
    calling = _titles_logged(serve, "calling_ae")
    assert calling == ["PACSWS", "FILEWS", "FILEWS", "ENVWS", "OPTIONWS", "NETDICOM"]


def test_a_rejected_title_is_named_with_where_it_came_from(tmp_path: Path) -> None:
    # Walkthrough 7a: "calling AE title not recognized", and five places that may have set
    # it; the title sent and its source were in the --debug trace only.
    port = _port()
    config = tmp_path / "config.toml"
    config.write_text(
        f'calling_aet = "FILEWS"\n[peers.pacs]\nhost = "127.0.0.1"\nport = {port}\n'
        'calling_aet = "PACSWS"\n'
    )
    plain = f"127.0.0.1:{port}"
    with running(serve_argv(tmp_path / "archive", port, "--allow", "GOODWS"), port):
        runs = {
            "from --aet": _echo(config, plain, "--aet", "bad"),
            "from $NETDICOM_AET": _echo(config, plain, env_aet="envws"),
            "from calling_aet of [peers.pacs] in": _echo(config, "pacs"),
            "from calling_aet in": _echo(config, plain),
            "from netdicom's default": _echo(tmp_path / "none.toml", plain),
        }
    sent = {
        "from --aet": "bad",
        "from $NETDICOM_AET": "envws",
        "from netdicom's default": "NETDICOM",
    }
    sent |= {"from calling_aet of [peers.pacs] in": "PACSWS", "from calling_aet in": "FILEWS"}
    for origin, result in runs.items():
        assert result.returncode == 5, result.stderr
        assert f"(we called as '{sent[origin]}', {origin}" in result.stderr, result.stderr
        assert "set it with --aet, $NETDICOM_AET or calling_aet" in result.stderr


def test_a_bad_title_from_the_environment_says_where_it_came_from(tmp_path: Path) -> None:
    result = _echo(tmp_path / "none.toml", "127.0.0.1:1", env_aet="ABCDEFGHIJKLMNOPQ")
    assert result.returncode == 2
    assert "is longer than 16 characters (from $NETDICOM_AET)" in result.stderr


def test_a_broken_file_stops_a_client_that_needs_its_calling_ae_title(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('calling_aet = "12345678901234567"\n')
    result = _echo(config, "127.0.0.1:1")
    assert result.returncode == 3
    assert (
        "config.toml: calling_aet AE title '12345678901234567' is longer than 16" in result.stderr
    )
    # --aet given: the file is not needed (nor read) for a HOST:PORT peer.
    assert _echo(config, "127.0.0.1:1", "--aet", "WS1", "--timeout", "1").returncode != 3


def test_an_unknown_name_from_netdicom_peer_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NETDICOM_CONFIG", str(_config(tmp_path, 104)))
    monkeypatch.setenv("NETDICOM_PEER", "nosuch")
    with pytest.raises(BadPeer) as caught:
        resolve_peer(None)
    assert str(caught.value) == (
        f"$NETDICOM_PEER is 'nosuch', which names no peer in {tmp_path / 'config.toml'} "
        "(configured: bare, pacs): set it to one of those, unset it, or give PEER"
    )
    # A name given as PEER is the command line's: worded as before.
    with pytest.raises(BadPeer, match=r"^'other' is not HOST:PORT"):
        resolve_peer("other")


def test_aec_help_states_the_precedence() -> None:
    result = CliRunner().invoke(build_app("store"), ["store", "--help"])
    text = " ".join(result.output.split())
    assert "AET@ in PEER overrides it; it overrides the aet of a peer named in the" in text


def test_a_configured_peer_name_wins_over_a_folder_of_that_name(tmp_path: Path) -> None:
    # Walkthrough 6d: `netdicom store pacs -r data` with a folder pacs/ in the working folder
    # sent data/ and pacs/ to the *default* peer, another archive than the one named.
    from tests.dicomfiles import make_files

    port = _port()
    config = tmp_path / "config.toml"
    config.write_text(
        f'default = "other"\n[peers.pacs]\nhost = "127.0.0.1"\nport = {port}\n\n'
        '[peers.other]\nhost = "127.0.0.1"\nport = 1\n'
    )
    make_files(tmp_path / "data", 2)
    make_files(tmp_path / "pacs", 1)  # a folder named after the peer
    env = {**os.environ, "NETDICOM_CONFIG": str(config)}
    env.pop("NETDICOM_PEER", None)

    def store(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*NETDICOM, "store", *args, "--json"], capture_output=True,
                              text=True, env=env, cwd=tmp_path, timeout=60)  # fmt: skip

    with running(serve_argv(tmp_path / "archive", port), port):
        sent = store("pacs", "-r", "data")
        alone = store("pacs")
    assert sent.returncode == 0, sent.stderr
    summary = json.loads(sent.stdout.splitlines()[-1])["summary"]
    assert summary["stored"] == 2 and summary["files"] == 2  # data/ only, to pacs
    assert summary["peer"].endswith(f":{port}")
    assert alone.returncode == 2
    assert "'pacs' names a configured peer: for the path here, write ./pacs" in " ".join(
        alone.stderr.split()
    )


def test_a_missing_file_with_a_default_peer_is_a_missing_file(tmp_path: Path) -> None:
    # Walkthrough 7a: `netdicom store "$f"` in a cron job, the file gone: "give at least one
    # file or directory" or "not a configured peer" (exit 2), as if no file had been given.
    config = tmp_path / "config.toml"
    config.write_text('default = "pacs"\n[peers.pacs]\nhost = "127.0.0.1"\nport = 1\n')
    env = {**os.environ, "NETDICOM_CONFIG": str(config)}
    env.pop("NETDICOM_PEER", None)
    for args in (["missing.dcm"], ["missing.dcm", "other.dcm"], ["pacs2", "other.dcm"]):
        result = subprocess.run([*NETDICOM, "store", *args], capture_output=True, text=True,
                                env=env, cwd=tmp_path, timeout=60)  # fmt: skip
        assert result.returncode == 3, result.stderr
        assert f"no such file or directory: {args[0]}" in result.stderr
    # A word like a peer's name may be a typo of one: the peers are named (verification).
    assert f"pacs2, nor a peer named in {config} (configured: pacs)" in result.stderr
