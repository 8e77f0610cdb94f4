"""The users file (salted scrypt hashes) and the allow list of serve."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import pytest

from netdicom.core.pdu import UserIdentityRQ, UserIdentityType
from netdicom.services.users import (
    AllowList,
    AllowListError,
    UsersFileError,
    add_user,
    identity_checker,
    load_users,
)


def test_add_user_stores_a_salted_hash_never_the_password(tmp_path: Path) -> None:
    path = tmp_path / "users.txt"
    assert add_user(path, "alice", "s3cret") is True
    assert add_user(path, "bob", "s3cret") is True
    text = path.read_text()
    assert "s3cret" not in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    # Same password, different salt: different lines.
    assert lines[0].split(":", 1)[1] != lines[1].split(":", 1)[1]
    users = load_users(path)
    assert users.verify("alice", b"s3cret")
    assert not users.verify("alice", b"S3cret")
    assert not users.verify("carol", b"s3cret")


def test_add_user_replaces_a_password_and_keeps_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "users.txt"
    add_user(path, "alice", "one")
    add_user(path, "bob", "two")
    assert add_user(path, "alice", "three") is False
    users = load_users(path)
    assert set(users.entries) == {"alice", "bob"}
    assert users.verify("alice", b"three") and not users.verify("alice", b"one")
    assert users.verify("bob", b"two")


@pytest.mark.parametrize("name", ["", "a:b", "#x", " alice", "x" * 300])
def test_bad_user_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(UsersFileError):
        add_user(tmp_path / "u", name, "pw")


def test_broken_users_file_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "users.txt"
    path.write_text("# comment\n\nalice:md5:abc\n")
    with pytest.raises(UsersFileError, match="line 3"):
        load_users(path)
    with pytest.raises(UsersFileError, match="does not exist"):
        load_users(tmp_path / "missing")


def _identity(kind: UserIdentityType | int, user: bytes, secret: bytes = b"") -> UserIdentityRQ:
    return UserIdentityRQ(kind, True, user, secret)


def test_identity_checker_accepts_only_a_good_username_and_passcode(tmp_path: Path) -> None:
    path = tmp_path / "users.txt"
    add_user(path, "älice", "pässword")  # UTF-8 both ways (PS3.7 D.3.3.7.1)
    check = identity_checker(load_users(path))
    good = _identity(UserIdentityType.USERNAME_AND_PASSCODE, "älice".encode(), "pässword".encode())
    assert check(good) is True
    assert check(_identity(UserIdentityType.USERNAME_AND_PASSCODE, "älice".encode(), b"x")) is False
    assert check(_identity(UserIdentityType.USERNAME_AND_PASSCODE, b"\xff", b"x")) is False
    # A bare username proves nothing; Kerberos, SAML and JWT are not supported.
    for kind in (UserIdentityType.USERNAME, UserIdentityType.KERBEROS, UserIdentityType.SAML,
                 UserIdentityType.JWT, 9):  # fmt: skip
        assert check(_identity(kind, "älice".encode(), "pässword".encode())) is False


def test_allow_list_titles_and_hosts() -> None:
    allow = AllowList.parse(["CT1", "MR@127.0.0.1", "*@10.0.0.8", "US@::1"])
    assert allow.permits("CT1", "192.168.1.1:4000")
    assert not allow.permits("ct1", "192.168.1.1:4000")  # titles are case sensitive
    assert allow.permits("MR", "127.0.0.1:5000")
    assert not allow.permits("MR", "127.0.0.2:5000")
    assert allow.permits("ANYONE", "10.0.0.8:104")
    assert allow.permits("ANYONE", "::ffff:10.0.0.8:104")  # IPv4 on a dual-stack socket
    assert allow.permits("US", "::1:104")
    assert not allow.permits("OTHER", "127.0.0.1:5000")
    assert AllowList.parse([]).permits("WHOEVER", "1.2.3.4:5")


def test_allow_list_refusal_names_the_host_rule_a_known_title_missed() -> None:
    allow = AllowList.parse(["CT1", "XA@10.9.9.9", "XA@10.9.9.8"])
    assert not allow.permits("XA", "127.0.0.1:5000")
    # It said "not in the allow list" for a title that is in it, only for another host.
    assert allow.refusal("XA") == (
        "calling AE title XA is allowed only as XA@10.9.9.9, XA@10.9.9.8 (--allow)"
    )
    assert allow.refusal("MR") == "calling AE title not in the allow list (--allow)"


def test_allow_list_resolves_host_names() -> None:
    rule = AllowList.parse(["CT@localhost"]).rules[0]
    assert rule.addresses is not None
    assert (
        ipaddress.ip_address("127.0.0.1") in rule.addresses
        or ipaddress.ip_address("::1") in rule.addresses
    )


@pytest.mark.parametrize(
    "entry",
    # A backslash or a control character: a title no caller can send (walkthrough 7a).
    ["", "*", "@host", "CT@", "A" * 17, "CT@no-such-host.invalid", "BAD\\AE", "CT\tX@127.0.0.1"],
)
def test_bad_allow_entries(entry: str) -> None:
    with pytest.raises(AllowListError):
        AllowList.parse([entry])
