"""The user's configuration file: named peers (TOML, read with the standard library's tomllib).

Where: `$NETDICOM_CONFIG` when set, else `$XDG_CONFIG_HOME/netdicom/config.toml`, else
`~/.config/netdicom/config.toml`. A missing file is an empty configuration.

    default = "pacs"            # the peer used when PEER is left out
    calling_aet = "WS1"         # our (calling) AE title towards every peer; optional

    [peers.pacs]
    host = "10.0.0.5"
    port = 104
    aet = "PACS"                # the peer's (called) AE title; optional
    calling_aet = "WS1-PACS"    # our AE title towards this peer; optional
    tls = true                  # connect with TLS (the --tls-* options give the files)

    [serve]
    allow = ["MODALITY1", "CT@10.0.0.7", "*@10.0.0.8"]   # added to `netdicom serve --allow`

`$NETDICOM_PEER` names the default peer and overrides `default`; `--aet`, then `$NETDICOM_AET`,
override both `calling_aet`s (see cli.common.calling_ae_title). Peer names are letters,
digits, `-`, `_` and `.`; they never contain `:` or `@`, so they cannot be taken for
HOST:PORT.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import field
from pathlib import Path

from netdicom.core.errors import NetDicomError
from netdicom.core.printable import quoted
from netdicom.core.records import frozen

_NAME = re.compile(r"[A-Za-z0-9_.-]+")


class ConfigError(NetDicomError):
    """The configuration file cannot be read or says something we cannot use."""


@frozen
class NamedPeer:
    name: str
    host: str
    port: int
    aet: str | None = None
    tls: bool = False
    # The AE title we call this peer with (PACS register each caller's title, and some give
    # one workstation a title per archive).
    calling_aet: str | None = None


@frozen
class Config:
    peers: Mapping[str, NamedPeer] = field(default_factory=dict)
    default: str | None = None
    path: Path | None = None
    # Our AE title towards every peer without its own calling_aet.
    calling_aet: str | None = None
    # [serve] allow: callers `netdicom serve` accepts besides its --allow options.
    allow: tuple[str, ...] = ()

    def default_peer(self, env: Mapping[str, str] | None = None) -> str | None:
        """The default peer's name: $NETDICOM_PEER, else `default` of the file."""
        environ = os.environ if env is None else env
        return environ.get("NETDICOM_PEER") or self.default


def config_path(env: Mapping[str, str] | None = None) -> Path:
    """Where the configuration file is looked for (see the module doc)."""
    environ = os.environ if env is None else env
    explicit = environ.get("NETDICOM_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    xdg = environ.get("XDG_CONFIG_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".config"
    return base / "netdicom" / "config.toml"


def load_config(path: Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Read the configuration; a missing file gives an empty Config, a broken one ConfigError."""
    where = path or config_path(env)
    try:
        raw = where.read_bytes()
    except FileNotFoundError:
        return Config(path=where)
    except PermissionError as exc:
        # Not taken for a missing file: an allow list there would be dropped without a word.
        # The usual cause is a HOME of another user (sudo, `su` without `-`).
        raise ConfigError(
            f"cannot read {where}: {exc.strerror or exc} (is HOME={Path.home()} this user's? "
            "set NETDICOM_CONFIG to the file to use)"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read {where}: {exc.strerror or exc}") from None
    import tomllib  # here: every client without --aet looks for the file, most find none

    try:
        data = tomllib.loads(_text(raw, where))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML: {exc}") from None
    return _parse(data, where)


def _text(raw: bytes, where: Path) -> str:
    # TOML files are UTF-8 (TOML v1.0.0, "Spec"); a file saved in Latin-1 or a Windows code
    # page is the usual mistake, so say where the first bad byte is and what to do.
    try:
        # "utf-8-sig": a byte-order mark (Windows editors, PowerShell's Out-File write one) is
        # UTF-8 too; left in, it was "Invalid statement (at line 1, column 1)" (walkthrough 7a).
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(
            f"{where}: not UTF-8 (byte 0x{raw[exc.start]:02X} at line {line}, column "
            f"{column}): TOML files must be UTF-8; save it as UTF-8"
        ) from None


def _parse(data: Mapping[str, object], where: Path) -> Config:
    unknown = set(data) - {"default", "calling_aet", "peers", "serve"}
    if unknown:
        # A typo here dropped what it held without a word: `[serv]` an allow list (serve
        # then accepted every caller), `[peer.x]` a peer, `defualt` the default.
        raise ConfigError(
            f"{where}: unknown keys or tables: {', '.join(sorted(unknown))} (the file takes "
            "default, calling_aet, [peers.NAME] and [serve])"
        )
    raw_peers = data.get("peers", {})
    if not isinstance(raw_peers, dict):
        raise ConfigError(f"{where}: [peers] must be a table of [peers.NAME] tables")
    peers: dict[str, NamedPeer] = {}
    for name, table in raw_peers.items():
        if not _NAME.fullmatch(name):
            raise ConfigError(f"{where}: peer name {quoted(name)}: use letters, digits, - _ .")
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: [peers.{name}] must be a table")
        peers[name] = _peer(name, table, where)
    default = data.get("default")
    if default is not None and not isinstance(default, str):
        raise ConfigError(f"{where}: default must be a peer name (a string)")
    if default is not None and default not in peers:
        raise ConfigError(f"{where}: default = {quoted(default)} but there is no [peers.{default}]")
    return Config(
        peers=peers,
        default=default,
        path=where,
        allow=_serve_allow(data, where),
        calling_aet=_ae_title(data.get("calling_aet"), "calling_aet", where),
    )


def _ae_title(value: object, what: str, where: Path) -> str | None:
    """An AE title of the file, trimmed (PS3.8 Table 9-11); None when absent."""
    from netdicom.core.acse.validation import clean_ae_title
    from netdicom.core.errors import LocalProtocolError

    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{where}: {what} must be an AE title (a string)")
    try:
        return clean_ae_title(value, what)
    except LocalProtocolError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _serve_allow(data: Mapping[str, object], where: Path) -> tuple[str, ...]:
    serve = data.get("serve", {})
    if not isinstance(serve, dict):
        raise ConfigError(f"{where}: [serve] must be a table")
    unknown = set(serve) - {"allow"}
    if unknown:
        raise ConfigError(f"{where}: [serve] has unknown keys: {', '.join(sorted(unknown))}")
    allow = serve.get("allow", [])
    if not isinstance(allow, list) or not all(isinstance(a, str) and a for a in allow):
        raise ConfigError(f'{where}: [serve] allow must be a list of "AE", "AE@HOST" or "*@HOST"')
    return tuple(allow)


def _peer(name: str, table: Mapping[str, object], where: Path) -> NamedPeer:
    host = table.get("host")
    port = table.get("port")
    tls = table.get("tls", False)
    if not isinstance(host, str) or not host:
        raise ConfigError(f'{where}: [peers.{name}] needs host = "..."')
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ConfigError(f"{where}: [peers.{name}] needs port = 1..65535, got {port!r}")
    aet = _ae_title(table.get("aet"), f"[peers.{name}] aet", where)
    calling = _ae_title(table.get("calling_aet"), f"[peers.{name}] calling_aet", where)
    if not isinstance(tls, bool):
        raise ConfigError(f"{where}: [peers.{name}] tls must be true or false")
    unknown = set(table) - {"host", "port", "aet", "calling_aet", "tls"}
    if unknown:
        raise ConfigError(f"{where}: [peers.{name}] has unknown keys: {', '.join(sorted(unknown))}")
    return NamedPeer(name, host, port, aet, tls, calling)
