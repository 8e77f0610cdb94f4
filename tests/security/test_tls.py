"""SSL contexts per PS3.15 B.9 (BCP 195), and the messages of failed handshakes."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from netdicom.transport.tls import (
    TlsOptions,
    TlsSetupError,
    client_context,
    describe_handshake_failure,
    server_context,
)
from tests.security.certs import Pki


def _tls12_suites(context: ssl.SSLContext) -> set[str]:
    return {c["name"] for c in context.get_ciphers() if c["protocol"] == "TLSv1.2"}


def test_client_context_is_tls12_plus_with_bcp195_suites_only(pki: Pki) -> None:
    context = client_context(TlsOptions(ca=pki.ca))
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    suites = _tls12_suites(context)
    assert suites, "no TLS 1.2 suite left"
    # RFC 7525 §4.2: forward secrecy and AEAD only; no RSA key transport, CBC, SHA-1 or RC4.
    for name in suites:
        assert name.startswith(("ECDHE-", "DHE-")) and "GCM" in name, name
    assert context.options & ssl.OP_NO_COMPRESSION


def test_client_context_without_hostname_check_still_verifies(pki: Pki) -> None:
    context = client_context(TlsOptions(ca=pki.ca, check_hostname=False))
    assert not context.check_hostname
    assert context.verify_mode == ssl.CERT_REQUIRED


def test_server_context_mutual_tls_needs_ca(pki: Pki) -> None:
    plain = server_context(TlsOptions(cert=pki.server_cert, key=pki.server_key))
    assert plain.verify_mode == ssl.CERT_NONE
    assert plain.minimum_version == ssl.TLSVersion.TLSv1_2
    mutual = server_context(
        TlsOptions(cert=pki.server_cert, key=pki.server_key, ca=pki.ca, verify_peer=True)
    )
    assert mutual.verify_mode == ssl.CERT_REQUIRED
    with pytest.raises(TlsSetupError, match="--tls-ca"):
        server_context(TlsOptions(cert=pki.server_cert, key=pki.server_key, verify_peer=True))
    with pytest.raises(TlsSetupError, match="--tls-cert"):
        server_context(TlsOptions())


def test_unusable_files_are_named(pki: Pki, tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    with pytest.raises(TlsSetupError, match=r"nope\.pem"):
        client_context(TlsOptions(ca=missing))
    with pytest.raises(TlsSetupError, match=r"nope\.pem"):
        server_context(TlsOptions(cert=missing, key=pki.server_key))
    # A key that is not the certificate's.
    with pytest.raises(TlsSetupError, match="belong to the certificate"):
        server_context(TlsOptions(cert=pki.server_cert, key=pki.client_key))
    with pytest.raises(TlsSetupError, match="--tls-cert"):
        client_context(TlsOptions(key=pki.client_key))
    # A certificate alone, no --tls-key: OpenSSL's "PEM lib" did not say what was missing.
    with pytest.raises(TlsSetupError, match="holds no private key; give the key with --tls-key"):
        server_context(TlsOptions(cert=pki.server_cert))


def _verify_error(message: str) -> ssl.SSLCertVerificationError:
    exc = ssl.SSLCertVerificationError(1, f"[SSL: CERTIFICATE_VERIFY_FAILED] {message}")
    exc.verify_message = message
    exc.verify_code = 1
    return exc


def test_handshake_failure_messages_say_what_to_try() -> None:
    mismatch = describe_handshake_failure(
        _verify_error("IP address mismatch, certificate is not valid for '10.0.0.5'."),
        "10.0.0.5",
        2762,
    )
    assert "10.0.0.5:2762" in mismatch and "--tls-no-hostname-check" in mismatch
    issuer = describe_handshake_failure(
        _verify_error("unable to get local issuer certificate"), "pacs", 2762
    )
    assert "unable to get local issuer certificate" in issuer and "--tls-ca" in issuer
    plain = describe_handshake_failure(
        ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number"), "pacs", 104
    )
    assert "TLS" in plain and "pacs:104" in plain
