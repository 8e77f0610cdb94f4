"""TLS for DICOM associations: SSL contexts per the BCP 195 profiles of PS3.15 Annex B.

PS3.15 B.9 (Non-Downgrading BCP 195 TLS Secure Transport Connection Profile): TLS 1.2 or
newer, never an older version, and for TLS 1.2 only the cipher suites BCP 195 recommends
(RFC 7525 §4.2 / RFC 9325 §4.2: ECDHE or DHE key exchange with AES-GCM). TLS 1.3 suites are
all AEAD and kept as OpenSSL offers them. Port 2762 is the port registered for DICOM over TLS
(PS3.15 B.1); nothing here assumes it.

Client: the server certificate is always verified, against --tls-ca or the system's trust
store; the host name check can be turned off for peers reached by an IP address their
certificate does not name. Server: a certificate and key are required; the client's certificate
is asked for and verified only with verify_peer (mutual TLS).
"""

from __future__ import annotations

import ssl
from pathlib import Path

from netdicom.core.address import host_port
from netdicom.core.errors import NetDicomError
from netdicom.core.printable import quoted
from netdicom.core.records import frozen

DICOM_TLS_PORT = 2762  # PS3.15 B.1: the port registered for DICOM over TLS

# RFC 7525 §4.2 / RFC 9325 §4.2, in OpenSSL's names; ECDSA and RSA certificates both work.
BCP195_TLS12_CIPHERS = ":".join(
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "DHE-RSA-AES128-GCM-SHA256",
        "DHE-RSA-AES256-GCM-SHA384",
    )
)


class TlsSetupError(NetDicomError):
    """A certificate, key or CA file that cannot be used (missing, unreadable, mismatched)."""


@frozen
class TlsOptions:
    """What the user gave: files are PEM.

    - `cert`, `key`: our certificate (chain) and private key; the key may live in `cert`.
    - `ca`: a PEM file of trusted CA certificates (or a directory of hashed ones); None on a
      client means the system's trust store.
    - `verify_peer`: server only: ask for and verify the client's certificate (mutual TLS).
    - `check_hostname`: client only: the server certificate must name the host we dial.
    """

    cert: Path | None = None
    key: Path | None = None
    ca: Path | None = None
    verify_peer: bool = False
    check_hostname: bool = True


def _harden(context: ssl.SSLContext) -> ssl.SSLContext:
    # PS3.15 B.9: never below TLS 1.2, whatever the OpenSSL configuration of the machine says.
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(BCP195_TLS12_CIPHERS)
    # RFC 7525 §3.3 / §3.4: no TLS compression (CRIME), no renegotiation.
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    return context


def _load_ca(context: ssl.SSLContext, ca: Path) -> None:
    try:
        if ca.is_dir():
            context.load_verify_locations(capath=str(ca))
        else:
            context.load_verify_locations(cafile=str(ca))
    except (OSError, ssl.SSLError) as exc:
        raise TlsSetupError(f"cannot load the CA certificates {ca}: {_reason(exc)}") from None


def _holds_private_key(path: Path) -> bool:
    try:
        return b"PRIVATE KEY-----" in path.read_bytes()[: 1 << 20]
    except OSError:
        return True  # unreadable: the error OpenSSL gave is the one to show


def _load_identity(context: ssl.SSLContext, cert: Path, key: Path | None) -> None:
    try:
        context.load_cert_chain(str(cert), None if key is None else str(key))
    except FileNotFoundError as exc:
        raise TlsSetupError(f"cannot read {exc.filename or cert}: no such file") from None
    except (OSError, ssl.SSLError) as exc:
        if key is None and not _holds_private_key(cert):
            # OpenSSL says only "PEM lib": name what is missing and how to give it.
            raise TlsSetupError(
                f"cannot load the certificate {cert}: it holds no private key; give the key "
                "with --tls-key KEY.pem (or put it in the same PEM file)"
            ) from None
        what = f"{cert}" if key is None else f"{cert} with the key {key}"
        raise TlsSetupError(
            f"cannot load the certificate {what}: {_reason(exc)} (both must be PEM, the key "
            "unencrypted, and the key must belong to the certificate)"
        ) from None


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)  # set by OpenSSL, absent on a hand-made SSLError
    if isinstance(exc, ssl.SSLError) and reason:
        return str(reason).replace("_", " ").lower()
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)


def client_context(options: TlsOptions) -> ssl.SSLContext:
    """The SSLContext a requestor connects with; raises TlsSetupError for unusable files."""
    context = _harden(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))
    context.verify_mode = ssl.CERT_REQUIRED
    context.check_hostname = options.check_hostname
    if options.ca is not None:
        _load_ca(context, options.ca)
    else:
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    if options.cert is not None:
        _load_identity(context, options.cert, options.key)
    elif options.key is not None:
        raise TlsSetupError("--tls-key needs --tls-cert (the certificate of that key)")
    return context


def server_context(options: TlsOptions) -> ssl.SSLContext:
    """The SSLContext an acceptor listens with; raises TlsSetupError for unusable files."""
    if options.cert is None:
        raise TlsSetupError("a TLS server needs its certificate and key: give --tls-cert/--tls-key")
    context = _harden(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER))
    _load_identity(context, options.cert, options.key)
    if options.verify_peer:
        if options.ca is None:
            raise TlsSetupError(
                "--tls-verify-peer needs --tls-ca: the CA that signed the clients' certificates"
            )
        _load_ca(context, options.ca)
        context.verify_mode = ssl.CERT_REQUIRED
    else:
        context.verify_mode = ssl.CERT_NONE
    return context


def describe_handshake_failure(exc: BaseException, host: str, port: int) -> str:
    """A message for a failed client handshake that says what to try."""
    where = host_port(host, port)
    if isinstance(exc, ssl.SSLCertVerificationError):
        detail = exc.verify_message or _reason(exc)
        text = f"TLS handshake with {where} failed: certificate verify failed: {detail}"
        lowered = detail.lower()
        if "mismatch" in lowered or "hostname" in lowered:
            return (
                f"{text}; the server's certificate does not name {quoted(host)}: dial a name it "
                "carries, or accept any name with --tls-no-hostname-check (the certificate "
                "is still verified against the CA)"
            )
        if "expired" in lowered or "not yet valid" in lowered:
            return f"{text}; check the clocks and the certificate's validity period"
        return (
            f"{text}; the server's certificate was not issued by a CA we trust: give the CA "
            "that signed it with --tls-ca CA.pem"
        )
    reason = _reason(exc)
    text = f"TLS handshake with {where} failed: {reason}"
    lowered = reason.lower()
    if "certificate required" in lowered or "handshake failure" in lowered or "alert" in lowered:
        return (
            f"{text}; the server may require a client certificate (--tls-cert/--tls-key) "
            "signed by a CA it trusts, or TLS 1.2+ with BCP 195 ciphers"
        )
    if "wrong version" in lowered or "record layer" in lowered or "packet length" in lowered:
        return f"{text}; is the peer speaking TLS on that port? (without --tls it may not be)"
    if "eof" in lowered or "reset" in lowered:
        return (
            f"{text}; the server closed the connection during the handshake: it may not speak "
            "TLS, or it refused our certificate"
        )
    return text


__all__ = [
    "BCP195_TLS12_CIPHERS",
    "DICOM_TLS_PORT",
    "TlsOptions",
    "TlsSetupError",
    "client_context",
    "describe_handshake_failure",
    "server_context",
]
