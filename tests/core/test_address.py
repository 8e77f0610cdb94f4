"""Host and port in messages: an IPv6 address in brackets (RFC 3986 §3.2.2)."""

from __future__ import annotations

from netdicom.core.address import host_port
from netdicom.services.peer import Peer


def test_ipv6_addresses_are_bracketed() -> None:
    # "::1:11112" cannot be read back (was printed so by serve, move --listen and the log).
    assert host_port("::1", 11112) == "[::1]:11112"
    assert host_port("127.0.0.1", 104) == "127.0.0.1:104"
    assert host_port("pacs.example.org", 104) == "pacs.example.org:104"
    assert str(Peer("fe80::1", 104, "PACS")).endswith("[fe80::1]:104")
