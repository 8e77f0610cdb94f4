"""The asyncio driver: runs the sans-IO core over TCP (optionally TLS)."""
