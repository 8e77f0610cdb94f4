"""Who we talk to: a peer's address and AE titles, parsed from `AET@HOST:PORT`."""

from __future__ import annotations

from netdicom.core.address import host_port
from netdicom.core.errors import NetDicomError
from netdicom.core.printable import quoted
from netdicom.core.records import frozen


class BadPeer(NetDicomError):
    """A PEER argument that is not HOST:PORT or AET@HOST:PORT."""


@frozen
class Peer:
    host: str
    port: int
    ae_title: str | None = None  # called AE title given in AET@HOST:PORT

    def __str__(self) -> str:
        prefix = f"{self.ae_title}@" if self.ae_title else ""
        return f"{prefix}{host_port(self.host, self.port)}"


def parse_peer(text: str) -> Peer:
    """Parse `HOST:PORT` or `AET@HOST:PORT` (IPv6 hosts in brackets: `[::1]:104`)."""
    ae: str | None = None
    rest = text.strip()
    if "@" in rest:
        ae, rest = rest.rsplit("@", 1)
        ae = ae.strip()
        if not ae or len(ae) > 16:
            raise BadPeer(f"{quoted(text)}: the AE title before '@' must be 1 to 16 characters")
    if rest.startswith("["):
        host, sep, port_text = rest[1:].partition("]:")
    else:
        host, sep, port_text = rest.rpartition(":")
    if not sep or not host:
        raise BadPeer(f"{quoted(text)} is not HOST:PORT or AET@HOST:PORT (e.g. PACS@10.0.0.5:104)")
    try:
        port = int(port_text)
    except ValueError:
        raise BadPeer(f"{quoted(text)}: port {quoted(port_text)} is not a number") from None
    if not 0 < port < 65536:
        raise BadPeer(f"{quoted(text)}: port {port} is outside 1-65535")
    return Peer(host=host, port=port, ae_title=ae)
