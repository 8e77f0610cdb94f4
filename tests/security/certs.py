"""Certificates made by the tests with the openssl command line: a CA, a server certificate
for 127.0.0.1/localhost, one naming another host, a client certificate, and a stranger CA."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


def have_openssl() -> bool:
    return shutil.which("openssl") is not None


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    # Signed by the CA, but naming only other.example: fails the host name check.
    other_cert: Path
    other_key: Path
    # A CA nobody trusts, and a client certificate it signed.
    stranger_ca: Path
    stranger_cert: Path
    stranger_key: Path


def _run(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _ca(directory: Path, name: str) -> tuple[Path, Path]:
    key, cert = directory / f"{name}.key", directory / f"{name}.pem"
    _run(
        "req", "-x509", "-newkey", "rsa:2048",
        "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj",
        f"/CN=netdicom test {name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=directory,
    )  # fmt: skip
    return cert, key


def _leaf(
    directory: Path, name: str, ca: tuple[Path, Path], san: str, usage: str
) -> tuple[Path, Path]:
    key, csr, cert = (directory / f"{name}{ext}" for ext in (".key", ".csr", ".pem"))
    ext = directory / f"{name}.ext"
    ext.write_text(
        f"basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
        f"extendedKeyUsage={usage}\n" + (f"subjectAltName={san}\n" if san else "")
    )
    _run(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
        "-subj", f"/CN={name}",
        cwd=directory,
    )  # fmt: skip
    _run(
        "x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
        "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(ext),
        cwd=directory,
    )  # fmt: skip
    return cert, key


def make_pki(directory: Path) -> Pki:
    directory.mkdir(parents=True, exist_ok=True)
    ca = _ca(directory, "ca")
    stranger = _ca(directory, "stranger-ca")
    server = _leaf(directory, "server", ca, "IP:127.0.0.1,DNS:localhost", "serverAuth")
    other = _leaf(directory, "other", ca, "DNS:other.example", "serverAuth")
    client = _leaf(directory, "client", ca, "", "clientAuth")
    strange = _leaf(directory, "stranger", stranger, "", "clientAuth")
    return Pki(
        ca=ca[0],
        server_cert=server[0],
        server_key=server[1],
        client_cert=client[0],
        client_key=client[1],
        other_cert=other[0],
        other_key=other[1],
        stranger_ca=stranger[0],
        stranger_cert=strange[0],
        stranger_key=strange[1],
    )
