"""Who may associate with `netdicom serve`: the allow list (--allow AE, AE@HOST, *@HOST) and
the users file (--users-file), checked by User Identity Negotiation (PS3.7 D.3.3.7) with a
username and passcode (type 2).

One user a line, `#` comments and blank lines ignored:

    alice:scrypt:16384:8:1:SALT:HASH

SALT (16 random bytes) and HASH (32 bytes) are base64; the three numbers are scrypt's N, r
and p (RFC 7914), kept per line so that stronger ones can be used later without breaking old
lines. Passwords are never stored, only the salted hash. `netdicom serve --users-file F
--add-user NAME` adds or replaces a user (the password is read from the terminal or stdin).

Only type 2 (username and passcode) can be checked against this file. Type 1 (a username
alone) proves nothing, and Kerberos (3), SAML (4) and JWT (5) are not supported: with a users
file, each of these is refused like a wrong password.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import logging
import os
import secrets
import socket
import tempfile
from collections.abc import Mapping
from dataclasses import field
from pathlib import Path

from netdicom.core.errors import NetDicomError
from netdicom.core.pdu import UserIdentityRQ, UserIdentityType
from netdicom.core.printable import quoted
from netdicom.core.records import frozen

log = logging.getLogger("netdicom.serve")

# scrypt costs (RFC 7914 §2; OWASP's interactive-login figures): ~16 MiB and tens of ms each.
_N, _R, _P = 2**14, 8, 1
_SALT_BYTES = 16
_HASH_BYTES = 32
_MAXMEM = 64 * 1024 * 1024
_SCHEME = "scrypt"
# A user name is what travels in the primary field (UTF-8); ':' separates our fields.
_MAX_NAME = 256


class UsersFileError(NetDicomError):
    """The users file cannot be read or has a line we cannot use."""


@frozen
class PasswordHash:
    n: int
    r: int
    p: int
    salt: bytes
    digest: bytes

    def matches(self, password: bytes) -> bool:
        candidate = _scrypt(password, self.salt, self.n, self.r, self.p, len(self.digest))
        return hmac.compare_digest(candidate, self.digest)

    def encode(self) -> str:
        b64 = base64.b64encode
        salt, digest = b64(self.salt).decode(), b64(self.digest).decode()
        return f"{_SCHEME}:{self.n}:{self.r}:{self.p}:{salt}:{digest}"


def _scrypt(password: bytes, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    return hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, maxmem=_MAXMEM, dklen=length)


def hash_password(password: str) -> PasswordHash:
    salt = secrets.token_bytes(_SALT_BYTES)
    digest = _scrypt(password.encode("utf-8"), salt, _N, _R, _P, _HASH_BYTES)
    return PasswordHash(_N, _R, _P, salt, digest)


def check_user_name(name: str) -> str:
    """The name as stored; raises UsersFileError for one we cannot store."""
    if not name or len(name.encode("utf-8")) > _MAX_NAME:
        raise UsersFileError(f"a user name must be 1 to {_MAX_NAME} bytes")
    if ":" in name or any(c in name for c in "\r\n#") or name != name.strip():
        raise UsersFileError(
            f"user name {quoted(name)}: no ':', '#', line breaks or surrounding spaces"
        )
    return name


@frozen
class Users:
    """The users of a users file; `verify` is the check serve makes for each association."""

    entries: Mapping[str, PasswordHash] = field(default_factory=dict)
    path: Path | None = None

    def verify(self, name: str, password: bytes) -> bool:
        """True when `name` exists and `password` is its password. Takes the same time for an
        unknown name as for a wrong password, so that names cannot be probed."""
        entry = self.entries.get(name)
        if entry is None:
            _DUMMY.matches(password)
            return False
        return entry.matches(password)


_DUMMY = PasswordHash(_N, _R, _P, b"\0" * _SALT_BYTES, b"\0" * _HASH_BYTES)


def load_users(path: Path) -> Users:
    """Read a users file; raises UsersFileError naming the line that is wrong."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsersFileError(
            f"users file {path} does not exist: create it with --add-user NAME"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsersFileError(f"cannot read users file {path}: {exc}") from None
    entries: dict[str, PasswordHash] = {}
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        name, _, rest = stripped.partition(":")
        try:
            entries[check_user_name(name)] = _parse_hash(rest)
        except (UsersFileError, ValueError) as exc:
            raise UsersFileError(f"{path} line {number}: {exc}") from None
    return Users(entries, path)


def _parse_hash(text: str) -> PasswordHash:
    parts = text.split(":")
    if len(parts) != 6 or parts[0] != _SCHEME:
        raise UsersFileError("expected NAME:scrypt:N:R:P:SALT:HASH")
    n, r, p = (int(v) for v in parts[1:4])
    if n < 2 or n & (n - 1) or not 0 < r <= 64 or not 0 < p <= 16 or 128 * r * n > _MAXMEM:
        raise UsersFileError(f"unusable scrypt costs N={n} r={r} p={p}")
    salt = base64.b64decode(parts[4], validate=True)
    digest = base64.b64decode(parts[5], validate=True)
    if len(salt) < 8 or len(digest) < 16:
        raise UsersFileError("salt or hash too short")
    return PasswordHash(n, r, p, salt, digest)


def add_user(path: Path, name: str, password: str) -> bool:
    """Add `name` (or replace its password) in the users file, created if missing with mode
    0600; other lines and comments are kept. Returns True when the user was new."""
    check_user_name(name)
    if not password:
        raise UsersFileError("the password must not be empty")
    lines: list[str] = []
    replaced = False
    if path.exists():
        load_users(path)  # refuse to rewrite a file we could not read back
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip().partition(":")[0] == name and not line.lstrip().startswith("#"):
                if not replaced:
                    lines.append(f"{name}:{hash_password(password).encode()}")
                replaced = True
                continue
            lines.append(line)
    else:
        lines.append("# netdicom users: NAME:scrypt:N:R:P:SALT:HASH (see netdicom serve --help)")
    if not replaced:
        lines.append(f"{name}:{hash_password(password).encode()}")
    _write_private(path, "\n".join(lines) + "\n")
    return not replaced


def _write_private(path: Path, text: str) -> None:
    # Write beside the target and rename: a crash never leaves a half-written users file.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def identity_checker(users: Users) -> IdentityCheck:
    """The AcceptorPolicy.identity_checker for `users` (see core/acse/acceptor.py)."""
    return IdentityCheck(users)


@frozen
class IdentityCheck:
    users: Users

    def __call__(self, identity: UserIdentityRQ) -> bool:
        # PS3.7 D.3.3.7: True accepts; the server response of the 0x59 sub-item is then empty
        # for types 1 and 2 (PS3.7 Table D.3-15), sent only when the requestor asked for it.
        kind = identity.identity_type
        if kind != UserIdentityType.USERNAME_AND_PASSCODE:
            log.warning(
                "user identity of type %s refused: only username and passcode (type 2) are "
                "checked against the users file",
                _describe_type(kind),
            )
            return False
        try:
            name = identity.primary.decode("utf-8")
        except UnicodeDecodeError:
            log.warning("user identity refused: the username is not UTF-8")
            return False
        if self.users.verify(name, identity.secondary):
            return True
        log.warning("user identity refused: wrong username or password for %r", name)
        return False


def _describe_type(kind: UserIdentityType | int) -> str:
    if isinstance(kind, UserIdentityType):
        return f"{int(kind)} ({kind.name.lower().replace('_', ' ')})"
    return f"{kind} (unknown)"


# --- the allow list -------------------------------------------------------------------------

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class AllowListError(NetDicomError):
    """An --allow entry (or config `allow` entry) we cannot use."""


@frozen
class AllowRule:
    """One entry: `ae_title` None means any title, `addresses` None means any host."""

    text: str
    ae_title: str | None
    addresses: frozenset[IPAddress] | None

    def permits(self, calling_ae: str, address: IPAddress | None) -> bool:
        if self.ae_title is not None and calling_ae != self.ae_title:
            return False
        return self.addresses is None or (address is not None and address in self.addresses)


@frozen
class AllowList:
    """Callers serve accepts; empty allows everyone. Titles compare trimmed and exactly
    (case matters: PS3.8 treats AE titles as strings of significant characters)."""

    rules: tuple[AllowRule, ...] = ()

    @classmethod
    def parse(cls, entries: tuple[str, ...] | list[str]) -> AllowList:
        """`AE`, `AE@HOST` or `*@HOST`; HOST is an address or a name resolved now."""
        return cls(tuple(_parse_rule(entry) for entry in entries))

    def permits(self, calling_ae: str, peer: str) -> bool:
        """`peer` is the Association's "HOST:PORT"."""
        if not self.rules:
            return True
        address = _address(peer.rpartition(":")[0].strip("[]") if ":" in peer else peer)
        return any(rule.permits(calling_ae, address) for rule in self.rules)

    def refusal(self, calling_ae: str) -> str:
        """Why `calling_ae` was refused, for the log: a title the list names, from another
        host, is not "not in the allow list" (the admin would look for a typo)."""
        hosts = [rule.text for rule in self.rules if rule.ae_title == calling_ae]
        if hosts:
            return f"calling AE title {calling_ae} is allowed only as {', '.join(hosts)} (--allow)"
        return "calling AE title not in the allow list (--allow)"


def _parse_rule(entry: str) -> AllowRule:
    text = entry.strip()
    ae, at, host = text.rpartition("@")
    if not at:
        ae, host = text, ""
    ae = ae.strip()
    if not ae or (ae != "*" and len(ae) > 16) or (not at and ae == "*"):
        raise AllowListError(
            f"--allow {quoted(entry)}: give AE, AE@HOST or *@HOST (AE titles are 1 to 16 characters)"
        )
    if ae != "*":
        from netdicom.core.acse.validation import clean_ae_title
        from netdicom.core.errors import LocalProtocolError

        try:
            # As every other title: no caller can send one with a backslash or a control
            # character, so such an entry refused everyone (walkthrough 7a).
            clean_ae_title(ae, "the")
        except LocalProtocolError as exc:
            raise AllowListError(f"--allow {quoted(entry)}: {exc}") from None
    if at and not host.strip():
        raise AllowListError(f"--allow {quoted(entry)}: HOST is missing after '@'")
    addresses = _resolve(host.strip(), entry) if at else None
    return AllowRule(text, None if ae == "*" else ae, addresses)


def _address(text: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    # An IPv4 peer on a dual-stack socket shows as ::ffff:a.b.c.d.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _resolve(host: str, entry: str) -> frozenset[IPAddress]:
    literal = _address(host.strip("[]"))
    if literal is not None:
        return frozenset({literal})
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise AllowListError(
            f"--allow {quoted(entry)}: cannot resolve {quoted(host)}: {exc}"
        ) from None
    found = {_address(str(info[4][0])) for info in infos}
    return frozenset(a for a in found if a is not None)
