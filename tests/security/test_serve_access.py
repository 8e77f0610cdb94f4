"""Access control of serve in process: allow list, --strict-aet, users file, TLS.

A netdicom client associates with a `ServeApp` on 127.0.0.1 and checks the exact
A-ASSOCIATE-RJ (PS3.8 Table 9-21), the User Identity response (PS3.7 D.3.3.7) and the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from netdicom.core import uids
from netdicom.core.acse import ProposedContext
from netdicom.core.errors import AssociationRejected, ConnectFailed
from netdicom.core.pdu import UserIdentityRQ, UserIdentityType
from netdicom.services.peer import Peer
from netdicom.services.serve import ServeApp, ServeConfig
from netdicom.services.session import ClientOptions, open_association
from netdicom.services.users import add_user
from netdicom.transport.config import TransportConfig
from netdicom.transport.tls import TlsOptions, client_context, server_context
from tests.security.certs import Pki

ECHO = [ProposedContext(uids.VERIFICATION, (uids.IMPLICIT_VR_LE,))]


@contextlib.asynccontextmanager
async def serving(root: Path, **options: Any) -> AsyncIterator[ServeApp]:
    app = ServeApp(ServeConfig(directory=root, port=0, **options))
    await app.server.start()
    task = asyncio.create_task(app.server.serve_forever())
    try:
        yield app
    finally:
        await app.server.close(grace=1.0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def associate(
    app: ServeApp,
    *,
    calling: str = "SCU",
    called: str = "NETDICOM",
    identity: UserIdentityRQ | None = None,
    transport: TransportConfig | None = None,
    host: str = "127.0.0.1",
) -> bytes | None:
    """Associate, release, and return the User Identity server response (None: none)."""
    options = ClientOptions(
        calling_ae=calling,
        transport=transport or TransportConfig(),
        user_identity=identity,
    )
    assoc = await open_association(Peer(host, app.server.port, called), options, ECHO)
    assert assoc.negotiated is not None
    response = assoc.negotiated.user_identity_response
    await assoc.release()
    return response


async def rejected(app: ServeApp, **kwargs: Any) -> tuple[int, int, int]:
    with pytest.raises(AssociationRejected) as info:
        await associate(app, **kwargs)
    return info.value.result, info.value.source, info.value.reason


def run(coro: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(coro(), 30))


def test_allow_list_rejects_other_callers_with_1_1_3(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        async with serving(tmp_path, allow=("CT1", "MR@127.0.0.1", "US@10.9.9.9")) as app:
            await associate(app, calling="CT1")
            await associate(app, calling="MR")
            assert await rejected(app, calling="US") == (1, 1, 3)  # right title, wrong host
            assert await rejected(app, calling="INTRUDER") == (1, 1, 3)

    with caplog.at_level(logging.INFO, logger="netdicom"):
        run(main)
    lines = [r.getMessage() for r in caplog.records if "rejected association" in r.getMessage()]
    assert len(lines) == 2
    assert "127.0.0.1:" in lines[1] and "INTRUDER -> NETDICOM" in lines[1]
    assert "(1, 1, 3)" in lines[1]


def test_strict_aet_rejects_a_wrong_called_title_with_1_1_7(tmp_path: Path) -> None:
    async def main() -> None:
        async with serving(tmp_path) as app:
            await associate(app, called="ANY-SCP")  # default: any called title
        async with serving(tmp_path, strict_aet=True) as app:
            await associate(app, called="NETDICOM")
            assert await rejected(app, called="ANY-SCP") == (1, 1, 7)

    run(main)


def _password(user: str, secret: str, positive: bool = True) -> UserIdentityRQ:
    return UserIdentityRQ(
        UserIdentityType.USERNAME_AND_PASSCODE, positive, user.encode(), secret.encode()
    )


def test_users_added_while_serving_are_known_at_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # serve --add-user on the file of a running serve: refused until a restart.
    users = tmp_path / "users.txt"
    add_user(users, "alice", "secret")

    async def main() -> None:
        async with serving(tmp_path / "dir", users_file=users) as app:
            assert await rejected(app, identity=_password("bob", "hunter2")) == (1, 2, 1)
            add_user(users, "bob", "hunter2")
            assert await associate(app, identity=_password("bob", "hunter2")) == b""
            # A file broken meanwhile keeps the users read before.
            users.write_text(users.read_text() + "garbage line\n")
            assert await associate(app, identity=_password("alice", "secret")) == b""

    with caplog.at_level(logging.INFO, logger="netdicom"):
        run(main)
    assert "cannot be used" in caplog.text


def test_users_file_checks_identity_and_answers_only_when_asked(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    users = tmp_path / "users.txt"
    add_user(users, "alice", "secret")

    async def main() -> None:
        async with serving(tmp_path / "dir", users_file=users) as app:
            # PS3.7 D.3.3.7.2: the 0x59 sub-item, empty for type 2, only when asked for.
            assert await associate(app, identity=_password("alice", "secret")) == b""
            assert await associate(app, identity=_password("alice", "secret", False)) is None
            # PS3.7 D.3.3.7: refused identity -> rejected-permanent, ACSE provider.
            assert await rejected(app, identity=_password("alice", "wrong")) == (1, 2, 1)
            assert await rejected(app, identity=_password("mallory", "secret")) == (1, 2, 1)
            assert await rejected(app) == (1, 2, 1)  # none sent
            for kind in (UserIdentityType.USERNAME, UserIdentityType.SAML, UserIdentityType.JWT):
                identity = UserIdentityRQ(kind, True, b"alice", b"secret")
                assert await rejected(app, identity=identity) == (1, 2, 1)
            # A JWT (SAML assertion, Kerberos ticket) is the credential itself: it was logged.
            token = UserIdentityRQ(UserIdentityType.JWT, True, b"eyJ.TOKENSECRET.sig", b"")
            assert await rejected(app, identity=token) == (1, 2, 1)

    with caplog.at_level(logging.INFO, logger="netdicom"):
        run(main)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "user identity 'alice' refused" in text
    assert "no user identity sent" in text
    assert "secret" not in text  # passwords never reach the log
    assert "TOKENSECRET" not in text and "user identity of type 5 refused" in text


def test_without_users_file_identity_is_ignored(tmp_path: Path) -> None:
    async def main() -> None:
        async with serving(tmp_path) as app:
            # An acceptor that does not check identity accepts without a response.
            assert await associate(app, identity=_password("anyone", "x")) is None

    run(main)


def _tls_pair(pki: Pki, **client: Any) -> tuple[TransportConfig, TransportConfig]:
    server = server_context(
        TlsOptions(cert=pki.server_cert, key=pki.server_key, ca=pki.ca, verify_peer=True)
    )
    options = TlsOptions(
        ca=client.get("ca", pki.ca),
        cert=client.get("cert", pki.client_cert),
        key=client.get("key", pki.client_key),
        check_hostname=client.get("check_hostname", True),
    )
    return TransportConfig(ssl_context=server), TransportConfig(ssl_context=client_context(options))


def test_mutual_tls_association(tmp_path: Path, pki: Pki) -> None:
    server, client = _tls_pair(pki)

    async def main() -> None:
        async with serving(tmp_path, transport=server) as app:
            assert await associate(app, transport=client) is None
            assert await associate(app, transport=client, host="localhost") is None

    run(main)


@pytest.mark.parametrize(
    "client, expected",
    [
        ({"ca": "stranger"}, "--tls-ca"),
        ({"cert": None, "key": None}, "client certificate"),
        ({"cert": "stranger"}, "client certificate"),
    ],
    ids=["untrusted-server", "no-client-cert", "untrusted-client"],
)
def test_tls_failures_are_connect_failures_with_a_hint(
    tmp_path: Path, pki: Pki, client: dict[str, Any], expected: str
) -> None:
    chosen = {
        "ca": pki.stranger_ca if client.get("ca") == "stranger" else pki.ca,
        "cert": pki.stranger_cert if client.get("cert") == "stranger" else pki.client_cert,
        "key": pki.stranger_key if client.get("cert") == "stranger" else pki.client_key,
    }
    if "cert" in client and client["cert"] is None:
        chosen["cert"] = chosen["key"] = None
    server, transport = _tls_pair(pki, **chosen)

    async def main() -> None:
        async with serving(tmp_path, transport=server) as app:
            with pytest.raises(ConnectFailed, match=expected):
                await associate(app, transport=transport)
            # The server keeps serving.
            _, good = _tls_pair(pki)
            await associate(app, transport=good)

    run(main)


def test_hostname_mismatch_and_no_hostname_check(tmp_path: Path, pki: Pki) -> None:
    server = TransportConfig(
        ssl_context=server_context(TlsOptions(cert=pki.other_cert, key=pki.other_key))
    )
    strict = TransportConfig(ssl_context=client_context(TlsOptions(ca=pki.ca)))
    lenient = TransportConfig(
        ssl_context=client_context(TlsOptions(ca=pki.ca, check_hostname=False))
    )

    async def main() -> None:
        async with serving(tmp_path, transport=server) as app:
            with pytest.raises(ConnectFailed, match="--tls-no-hostname-check"):
                await associate(app, transport=strict)
            assert await associate(app, transport=lenient) is None

    run(main)
