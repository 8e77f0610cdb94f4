"""TLS, user identity and access control against dcmtk's TLS tools, with certificates the test
makes (openssl): echoscu/storescu/findscu +tls -> netdicom serve --tls, and netdicom echo/store
--tls -> storescp +tls. dcmtk's default profile is the Non-Downgrading BCP 195 one (PS3.15
B.9), the profile netdicom speaks."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.dicomfiles import make_files
from tests.peers import DCMTK_ENV, NETDICOM, free_port, have_dcmtk, run_cli, running, serve_argv
from tests.security.certs import Pki, have_openssl, make_pki

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(not have_dcmtk(), reason="dcmtk is not installed"),
    pytest.mark.skipif(not have_openssl(), reason="openssl is not installed"),
]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def _dcmtk(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv), capture_output=True, text=True, env=DCMTK_ENV, timeout=60, check=False
    )


def _client_tls(pki: Pki) -> list[str]:
    return ["+tls", str(pki.client_key), str(pki.client_cert), "+cf", str(pki.ca)]


def _serve_tls(pki: Pki) -> list[str]:
    return [
        "--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key),
        "--tls-ca", str(pki.ca), "--tls-verify-peer",
    ]  # fmt: skip


def _stored(root: Path) -> list[Path]:
    return [p for p in root.rglob("*.dcm") if not p.relative_to(root).parts[0].startswith(".")]


def test_dcmtk_tls_clients_to_serve(tmp_path: Path, pki: Pki) -> None:
    files = make_files(tmp_path / "in", 2)
    root = tmp_path / "archive"
    port = free_port()
    users = tmp_path / "users.txt"
    added = subprocess.run(
        [*NETDICOM, "serve", "--add-user", "alice", "--users-file", str(users)],
        input="s3cret\n",
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert added.returncode == 0, added.stderr
    argv = serve_argv(root, port, *_serve_tls(pki), "--users-file", str(users))
    with running(argv, port) as server:
        # echoscu sends no user identity: refused (1, 2, 1) once a users file is configured.
        result = _dcmtk("echoscu", *_client_tls(pki), "127.0.0.1", str(port))
        assert result.returncode != 0
        assert "Rejected Permanent" in result.stderr + result.stdout
        # storescu with username/password, asking for the positive response (PS3.7 D.3.3.7).
        identity = ["-usr", "alice", "-pwd", "s3cret", "-rsp"]
        result = _dcmtk(
            "storescu", *_client_tls(pki), *identity, "127.0.0.1", str(port), *map(str, files)
        )
        assert result.returncode == 0, result.stderr
        assert len(_stored(root)) == 2
        # A wrong password stores nothing.
        more = make_files(tmp_path / "more", 1)
        result = _dcmtk(
            "storescu", *_client_tls(pki), "-usr", "alice", "-pwd", "nope",
            "127.0.0.1", str(port), str(more[0]),
        )  # fmt: skip
        assert result.returncode != 0
        assert len(_stored(root)) == 2
        # No client certificate: the handshake fails, serve logs it and keeps serving.
        result = _dcmtk("echoscu", "+tla", "+cf", str(pki.ca), "127.0.0.1", str(port))
        assert result.returncode != 0
        assert server.poll() is None
        server.terminate()
        out = server.communicate(timeout=15)[0].decode()
    assert server.returncode == 0
    assert "TLS handshake with 127.0.0.1:" in out
    assert "no user identity sent (1, 2, 1)" in out
    assert "user identity 'alice' refused" in out
    assert "s3cret" not in out and "nope" not in out


def test_dcmtk_findscu_tls_with_allow_list_and_strict_aet(tmp_path: Path, pki: Pki) -> None:
    root = tmp_path / "archive"
    files = make_files(tmp_path / "in", 1)
    port = free_port()
    argv = serve_argv(root, port, *_serve_tls(pki), "--allow", "FINDSCU@127.0.0.1",
                      "--allow", "STORESCU", "--strict-aet")  # fmt: skip
    with running(argv, port) as server:
        result = _dcmtk("storescu", *_client_tls(pki), "-aec", "NETDICOM",
                        "127.0.0.1", str(port), str(files[0]))  # fmt: skip
        assert result.returncode == 0, result.stderr
        query = ["-S", "-k", "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID"]
        result = _dcmtk("findscu", *_client_tls(pki), "-aet", "FINDSCU", "-aec", "NETDICOM",
                        *query, "127.0.0.1", str(port))  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert "Find Response: 1 (Pending)" in result.stderr + result.stdout
        # Not in the allow list: (1, 1, 3); a wrong called AE title: (1, 1, 7).
        result = _dcmtk("findscu", *_client_tls(pki), "-aet", "OTHER", "-aec", "NETDICOM",
                        *query, "127.0.0.1", str(port))  # fmt: skip
        assert result.returncode != 0
        assert "Calling AE Title Not Recognized" in result.stderr + result.stdout
        result = _dcmtk("findscu", *_client_tls(pki), "-aet", "FINDSCU", "-aec", "WRONG",
                        *query, "127.0.0.1", str(port))  # fmt: skip
        assert result.returncode != 0
        assert "Called AE Title Not Recognized" in result.stderr + result.stdout
        server.terminate()
        out = server.communicate(timeout=15)[0].decode()
    assert "OTHER -> NETDICOM: calling AE title not in the allow list" in out
    assert "FINDSCU -> WRONG: called AE title is not ours" in out


def test_netdicom_tls_clients_to_dcmtk_storescp(tmp_path: Path, pki: Pki) -> None:
    port = free_port()
    out = tmp_path / "out"
    out.mkdir()
    files = make_files(tmp_path / "in", 3)
    argv = [
        "storescp", "+tls", str(pki.server_key), str(pki.server_cert), "+cf", str(pki.ca),
        "-od", str(out), str(port),
    ]  # fmt: skip
    client = [
        "--tls-ca", str(pki.ca), "--tls-cert", str(pki.client_cert),
        "--tls-key", str(pki.client_key),
    ]  # fmt: skip
    with running(argv, port, env=DCMTK_ENV) as storescp:
        result = run_cli("echo", f"127.0.0.1:{port}", *client)
        assert result.returncode == 0, result.stderr
        result = run_cli("store", f"127.0.0.1:{port}", *map(str, files), *client, "-q")
        assert result.returncode == 0, result.stderr
        assert len(list(out.iterdir())) == 3
        # The server certificate is not from a CA we trust: exit 4, and what to do.
        result = run_cli(
            "echo", f"127.0.0.1:{port}", "--tls-ca", str(pki.stranger_ca),
            "--tls-cert", str(pki.client_cert), "--tls-key", str(pki.client_key),
        )  # fmt: skip
        assert result.returncode == 4, result.stderr
        assert "certificate verify failed" in result.stderr and "--tls-ca" in result.stderr
        # storescp requires a client certificate (dcmtk's -rc default): exit 4 with a hint.
        # Under TLS 1.3 the refusal comes after our handshake; it used to be missed, now and
        # then, and waited for until the ACSE timeout (test_tls_refused_after_handshake.py).
        result = run_cli("echo", f"127.0.0.1:{port}", "--tls-ca", str(pki.ca))
        assert result.returncode == 4, result.stderr
        assert "client certificate" in result.stderr
        assert storescp.poll() is None


def test_password_without_tls_is_warned_about(tmp_path: Path) -> None:
    port = free_port()
    with running(serve_argv(tmp_path, port), port):
        result = run_cli("echo", f"127.0.0.1:{port}", "--username", "bob", "--password", "pw")
    assert result.returncode == 0, result.stderr
    assert "clear text" in result.stderr and "--tls" in result.stderr
    # serve without a users file ignores identity: the client says it was not confirmed.
    assert "without confirming the user identity" in result.stderr


def test_move_over_tls_to_a_plain_destination(tmp_path: Path, pki: Pki) -> None:
    """serve --tls answers C-MOVE over TLS; its sub-association to a destination not
    configured for TLS is plain (the listening TLS context is never used to dial out)."""
    root = tmp_path / "archive"
    files = make_files(tmp_path / "in", 2)
    dest_dir = tmp_path / "dest"
    dest_dir.mkdir()
    port, dest_port = free_port(), free_port()
    store_argv = ["storescp", "-aet", "DEST", "-od", str(dest_dir), str(dest_port)]
    argv = serve_argv(root, port, *_serve_tls(pki), "--remote", f"DEST=127.0.0.1:{dest_port}")
    client = [
        "--tls-ca", str(pki.ca), "--tls-cert", str(pki.client_cert),
        "--tls-key", str(pki.client_key),
    ]  # fmt: skip
    with running(store_argv, dest_port, env=DCMTK_ENV), running(argv, port):
        result = run_cli("store", f"127.0.0.1:{port}", *map(str, files), *client, "-q")
        assert result.returncode == 0, result.stderr
        from pydicom import dcmread

        study = str(dcmread(files[0]).StudyInstanceUID)
        result = run_cli(
            "move", f"NETDICOM@127.0.0.1:{port}", f"StudyInstanceUID={study}",
            "--dest", "DEST", *client,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
    assert len(list(dest_dir.iterdir())) == 2


def _move_to_a_tls_destination(
    tmp_path: Path, pki: Pki, serve_args: list[str], client: list[str]
) -> None:
    """serve moves two instances to dcmtk's storescp +tls, configured with `tls = true`."""
    root = tmp_path / "archive"
    files = make_files(tmp_path / "in", 2)
    dest_dir = tmp_path / "dest"
    dest_dir.mkdir()
    port, dest_port = free_port(), free_port()
    config = tmp_path / "config.toml"
    config.write_text(
        f'[peers.dest]\nhost = "127.0.0.1"\nport = {dest_port}\naet = "DEST"\ntls = true\n'
    )
    env = {**DCMTK_ENV, "NETDICOM_CONFIG": str(config)}
    store_argv = [
        "storescp", "+tls", str(pki.server_key), str(pki.server_cert), "+cf", str(pki.ca),
        "-ic", "-aet", "DEST", "-od", str(dest_dir), str(dest_port),
    ]  # fmt: skip
    argv = serve_argv(root, port, *serve_args)
    with running(store_argv, dest_port, env=DCMTK_ENV), running(argv, port, env=env):
        result = run_cli("store", f"127.0.0.1:{port}", *map(str, files), *client, "-q")
        assert result.returncode == 0, result.stderr
        from pydicom import dcmread

        study = str(dcmread(files[0]).StudyInstanceUID)
        result = run_cli(
            "move", f"NETDICOM@127.0.0.1:{port}", f"StudyInstanceUID={study}",
            "--dest", "DEST", *client,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
    assert len(list(dest_dir.iterdir())) == 2


def test_move_to_a_destination_configured_for_tls(tmp_path: Path, pki: Pki) -> None:
    """A C-MOVE destination with `tls = true` in the configuration file is dialled with TLS
    (dcmtk storescp +tls), verified against --tls-ca."""
    client = [
        "--tls-ca", str(pki.ca), "--tls-cert", str(pki.client_cert),
        "--tls-key", str(pki.client_key),
    ]  # fmt: skip
    _move_to_a_tls_destination(tmp_path, pki, _serve_tls(pki), client)


def test_plain_serve_verifies_a_tls_destination_with_tls_ca_alone(tmp_path: Path, pki: Pki) -> None:
    """serve listening in plain can be given the CA of its TLS move destinations: --tls-ca
    alone used to switch TLS on for the listener too, which then demanded a certificate. The
    listener stays plain: plain clients store and move."""
    _move_to_a_tls_destination(tmp_path, pki, ["--tls-ca", str(pki.ca)], [])


def test_tls_ca_alone_without_tls_destinations_still_asks_for_a_certificate(
    tmp_path: Path,
) -> None:
    # Without TLS destinations, --tls-ca alone can only mean a TLS listener: refused until
    # it has its certificate, never listening in plain by surprise.
    ca = tmp_path / "ca.pem"
    ca.write_text("not used")
    result = subprocess.run(
        [*NETDICOM, "serve", "--dir", str(tmp_path / "a"), "--port", str(free_port()),
         "--tls-ca", str(ca)],
        capture_output=True, text=True, timeout=30,
        env={**os.environ, "NETDICOM_CONFIG": str(tmp_path / "none.toml")},
    )  # fmt: skip
    assert result.returncode == 3, result.stderr
    assert "--tls-cert" in result.stderr


def test_move_listen_with_tls_options(tmp_path: Path, pki: Pki) -> None:
    """`netdicom move --listen` over TLS to serve: the C-MOVE goes over TLS, the receiver
    listens in plain (the client TLS context cannot accept connections)."""
    root = tmp_path / "archive"
    files = make_files(tmp_path / "in", 2)
    out = tmp_path / "moved"
    port, listen_port = free_port(), free_port()
    argv = serve_argv(root, port, *_serve_tls(pki), "--remote", f"ME=127.0.0.1:{listen_port}")
    client = [
        "--tls-ca", str(pki.ca), "--tls-cert", str(pki.client_cert),
        "--tls-key", str(pki.client_key),
    ]  # fmt: skip
    with running(argv, port):
        result = run_cli("store", f"127.0.0.1:{port}", *map(str, files), *client, "-q")
        assert result.returncode == 0, result.stderr
        from pydicom import dcmread

        study = str(dcmread(files[0]).StudyInstanceUID)
        result = run_cli(
            "move", f"NETDICOM@127.0.0.1:{port}", f"StudyInstanceUID={study}", "--aet", "ME",
            "--listen", str(listen_port), "--out", str(out), *client,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
    assert len(list(out.rglob("*.dcm"))) == 2
