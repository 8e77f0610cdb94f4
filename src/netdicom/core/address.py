"""How a host and port are written in messages and logs."""

from __future__ import annotations


def host_port(host: object, port: object) -> str:
    """`127.0.0.1:104`, and for an IPv6 address `[::1]:104` (RFC 3986 §3.2.2): `::1:104`
    cannot be read back."""
    text = str(host)
    return f"[{text}]:{port}" if ":" in text else f"{text}:{port}"


__all__ = ["host_port"]
