"""Named peers: where the TOML file is looked for, what it may say, and how PEER resolves."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import typer

from netdicom.cli.common import resolve_peer
from netdicom.config import ConfigError, config_path, load_config
from netdicom.services.peer import BadPeer, Peer
from tests.peers import NETDICOM

GOOD = """
default = "pacs"

[peers.pacs]
host = "10.0.0.5"
port = 104
aet = "PACS"

[peers.local]
host = "127.0.0.1"
port = 11112
"""


def test_config_path_order(tmp_path: Path) -> None:
    assert config_path({"NETDICOM_CONFIG": str(tmp_path / "x.toml")}) == tmp_path / "x.toml"
    assert config_path({"XDG_CONFIG_HOME": str(tmp_path)}) == tmp_path / "netdicom/config.toml"
    assert config_path({}) == Path.home() / ".config/netdicom/config.toml"


def test_load_peers_and_default(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(GOOD)
    config = load_config(path)
    assert config.peers["pacs"].host == "10.0.0.5" and config.peers["pacs"].aet == "PACS"
    assert config.peers["local"].aet is None
    assert config.default_peer({}) == "pacs"
    assert config.default_peer({"NETDICOM_PEER": "local"}) == "local"


def test_calling_ae_titles_are_read_trimmed(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('calling_aet = " WS1 "\n' + GOOD + 'calling_aet = "WS1-LOCAL"\n')
    config = load_config(path)
    assert config.calling_aet == "WS1"
    assert config.peers["local"].calling_aet == "WS1-LOCAL"
    assert config.peers["pacs"].calling_aet is None


def test_a_byte_order_mark_and_crlf_are_fine(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD.replace("\n", "\r\n").encode())
    assert load_config(path).peers["pacs"].aet == "PACS"


def test_missing_file_is_empty(tmp_path: Path) -> None:
    config = load_config(tmp_path / "nope.toml")
    assert not config.peers and config.default is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("default = ", "not valid TOML"),
        ("[peers.a]\nport = 104\n", "needs host"),
        ('[peers.a]\nhost = "h"\nport = 70000\n', "port"),
        ('[peers.a]\nhost = "h"\nport = 1\naet = "12345678901234567"\n', "aet"),
        ('[peers.a]\nhost = "h"\nport = 1\ncolour = "red"\n', "unknown keys: colour"),
        ('default = "b"\n[peers.a]\nhost = "h"\nport = 1\n', "no [peers.b]"),
        ('[peers."a:b"]\nhost = "h"\nport = 1\n', "peer name"),
        # Typos at the top level dropped what they held: an allow list, a peer, the default.
        ('[serv]\nallow = ["CT1"]\n', "unknown keys or tables: serv"),
        ('[peer.x]\nhost = "h"\nport = 1\n', "unknown keys or tables: peer"),
        ('defualt = "x"\n', "unknown keys or tables: defualt"),
        ('calling_aet = "12345678901234567"\n', "calling_aet AE title"),
        ('calling_aet = "WS\\\\1"\n', "backslash"),
        ("calling_aet = 7\n", "calling_aet must be an AE title"),
        ('[peers.a]\nhost = "h"\nport = 1\ncalling_aet = "  "\n', "[peers.a] calling_aet"),
    ],
)
def test_broken_config_says_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"c\.toml") as caught:
        load_config(path)
    assert message in str(caught.value)


@pytest.fixture
def configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(GOOD)
    monkeypatch.setenv("NETDICOM_CONFIG", str(path))
    monkeypatch.delenv("NETDICOM_PEER", raising=False)
    return path


def test_resolve_peer_forms(configured: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_peer("h:104") == Peer("h", 104)
    assert resolve_peer("AE@h:104") == Peer("h", 104, "AE")
    assert resolve_peer("local") == Peer("127.0.0.1", 11112)
    assert resolve_peer(None) == Peer("10.0.0.5", 104, "PACS")
    monkeypatch.setenv("NETDICOM_PEER", "local")
    assert resolve_peer(None) == Peer("127.0.0.1", 11112)
    # Every form PEER takes (it was a name only).
    monkeypatch.setenv("NETDICOM_PEER", "CT@10.1.2.3:4006")
    assert resolve_peer(None) == Peer("10.1.2.3", 4006, "CT")
    assert resolve_peer("local") == Peer("127.0.0.1", 11112)  # PEER given wins


def test_resolve_unknown_name_lists_the_configured_ones(configured: Path) -> None:
    with pytest.raises(BadPeer, match="configured: local, pacs"):
        resolve_peer("nope")


def test_resolve_without_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETDICOM_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.delenv("NETDICOM_PEER", raising=False)
    with pytest.raises(BadPeer, match="no default peer"):
        resolve_peer(None)


def test_broken_config_exits_3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[[[")
    monkeypatch.setenv("NETDICOM_CONFIG", str(path))
    with pytest.raises(typer.Exit) as caught:
        resolve_peer(None)
    assert caught.value.exit_code == 3


def test_a_permission_error_names_home_and_netdicom_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A folder not searchable (another user's HOME, as with sudo): an error naming the likely
    # cause, not an empty configuration (an allow list there would be dropped without a word).
    path = tmp_path / "config.toml"

    def denied(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(ConfigError, match=r"Permission denied \(is HOME=.* set NETDICOM_CONFIG"):
        load_config(path)


def test_a_config_that_is_not_utf8_says_where(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_bytes(b'# H\xf4pital Saint-Andr\xe9\n[peers.a]\nhost = "h"\nport = 1\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == (
        f"{path}: not UTF-8 (byte 0xF4 at line 1, column 4): TOML files must be UTF-8; "
        "save it as UTF-8"
    )


def test_a_config_that_is_not_utf8_exits_3_without_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.peers import run_cli

    path = tmp_path / "c.toml"
    path.write_bytes(b'[peers.a]\nhost = "h"\nport = 1\naet = "ST\xc9PHANE"\n')
    monkeypatch.setenv("NETDICOM_CONFIG", str(path))
    result = run_cli("echo", "a")
    assert result.returncode == 3
    assert "Traceback" not in result.stderr
    assert "not UTF-8 (byte 0xC9 at line 4, column 10)" in result.stderr


def test_serve_with_a_broken_configuration_exits_3(tmp_path: Path) -> None:
    # serve reads the configuration for its move destinations: a broken file is bad input
    # (exit 3, naming it), as for the other commands, not a usage error of --remote.
    config = tmp_path / "config.toml"
    config.write_bytes("# H\xf4pital\n[peers.x]\nhost = 1\n".encode("latin-1"))
    result = subprocess.run(
        [*NETDICOM, "serve", "--dir", str(tmp_path / "a"), "--port", "0"],
        capture_output=True, text=True, timeout=30,
        env={**os.environ, "NETDICOM_CONFIG": str(config)},
    )  # fmt: skip
    assert result.returncode == 3, result.stderr
    assert str(config) in result.stderr and "Traceback" not in result.stderr


def test_a_bad_serve_allow_entry_names_the_file_not_an_option(tmp_path: Path) -> None:
    # Walkthrough 6d: "Invalid value for --allow: --allow 'X@...'", exit 2, for an entry of
    # the configuration file (the README: a broken configuration exits 3 naming it).
    config = tmp_path / "config.toml"
    config.write_text('[serve]\nallow = ["PACS@no.such.host.invalid"]\n')
    env = {**os.environ, "NETDICOM_CONFIG": str(config)}
    result = subprocess.run([*NETDICOM, "serve", "--dir", str(tmp_path / "a"), "--port", "1"],
                            capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
    assert result.returncode == 3, result.stderr
    assert f"{config}: [serve] allow: 'PACS@no.such.host.invalid': cannot resolve" in result.stderr
    assert "--allow" not in result.stderr
