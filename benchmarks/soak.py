"""Soak: many associations mixing echo, release, abort and broken peers against ONE serve
process; then check that open file descriptors and asyncio tasks are back to their baseline
and that RSS grew less than a bound.

    .venv/bin/python benchmarks/soak.py                      # 2000 associations
    .venv/bin/python benchmarks/soak.py --associations 300 --json

The serve process is this script in `--serve-child` mode: the real ServeApp (what
`netdicom serve` runs) plus a SIGUSR1 handler that prints its task count, fd count and RSS as
one JSON line, so the figures come from inside the process under test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

# Mix of what each association does (weights).
MIX = {
    "echo-release": 40,  # associate, C-ECHO x3, release
    "echo-abort": 20,  # associate, C-ECHO, A-ABORT
    "release-only": 10,  # associate, release
    "back-to-back": 10,  # raw: 5 C-ECHO-RQs + A-RELEASE-RQ in one write
    "hang-up": 10,  # raw: associate, then close the socket without a PDU
    "garbage": 10,  # raw: an HTTP request instead of an A-ASSOCIATE-RQ
}


# --- the serve process -----------------------------------------------------------------------


def _stats() -> dict[str, int]:
    rss = 0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    return {
        "tasks": len(asyncio.all_tasks()),
        "fds": len(os.listdir("/proc/self/fd")),
        "rss_kib": rss,
    }


async def _serve_child(directory: Path) -> None:
    from netdicom.services.serve import ServeApp, ServeConfig
    from netdicom.transport.config import Timeouts, TransportConfig

    timeouts = Timeouts(artim=5.0, acse=5.0, idle=10.0)
    app = ServeApp(
        ServeConfig(directory=directory, port=0, transport=TransportConfig(timeouts=timeouts))
    )
    await app.server.start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def dump() -> None:
        stats = _stats()
        stats["associations"] = len(app.server.associations)
        sys.stdout.write(json.dumps(stats) + "\n")
        sys.stdout.flush()

    loop.add_signal_handler(signal.SIGUSR1, dump)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    sys.stdout.write(f"{app.server.port}\n")
    sys.stdout.flush()
    serving = asyncio.create_task(app.server.serve_forever())
    await stop.wait()
    await app.server.close()
    serving.cancel()


# --- the clients -----------------------------------------------------------------------------


async def _netdicom_client(port: int, kind: str) -> None:
    from netdicom.services.echo import ECHO_CONTEXTS, echo
    from netdicom.services.peer import Peer
    from netdicom.services.session import ClientOptions, open_association

    options = ClientOptions(called_ae="NETDICOM")
    assoc = await open_association(Peer("127.0.0.1", port), options, ECHO_CONTEXTS)
    if kind == "echo-release":
        replies = await echo(assoc, 3, 10)
        assert all(r.status == 0 for r in replies)
        await assoc.release()
    elif kind == "echo-abort":
        await echo(assoc, 1, 10)
        assoc.abort()
    else:
        await assoc.release()
    await assoc.wait_closed()


async def _raw_client(port: int, kind: str) -> None:
    from netdicom.core import uids
    from netdicom.core.acse import ProposedContext, build_associate_rq
    from netdicom.core.dimse import CEchoRQ, encode_command
    from netdicom.core.pdu import (
        PDataTF,
        PresentationDataValue,
        ReleaseRQ,
        encode_pdu,
    )

    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        if kind == "garbage":
            writer.write(b"GET / HTTP/1.1\r\nHost: soak\r\n\r\n")
            await reader.read(10)  # the A-ABORT
            return
        rq = build_associate_rq(
            calling_ae="SOAK",
            called_ae="NETDICOM",
            contexts=(ProposedContext(uids.VERIFICATION, (uids.IMPLICIT_VR_LE,)),),
            max_pdu=16384,
        )
        writer.write(encode_pdu(rq))
        header = await reader.readexactly(6)
        await reader.readexactly(int.from_bytes(header[2:], "big"))
        if kind == "hang-up":
            return
        echoes = b"".join(
            encode_pdu(PDataTF((PresentationDataValue(1, True, True, encode_command(CEchoRQ(i))),)))
            for i in range(1, 6)
        )
        writer.write(echoes + encode_pdu(ReleaseRQ()))
        # 5 responses and the A-RELEASE-RP, then serve waits for our close.
        for _ in range(6):
            header = await reader.readexactly(6)
            await reader.readexactly(int.from_bytes(header[2:], "big"))
        assert header[0] == 0x06, header
    finally:
        writer.close()
        await writer.wait_closed()


async def _drive(port: int, count: int, concurrency: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    kinds = rng.choices(list(MIX), weights=list(MIX.values()), k=count)
    limit = asyncio.Semaphore(concurrency)
    failures: dict[str, int] = {}

    async def one(kind: str) -> None:
        async with limit:
            try:
                if kind in ("back-to-back", "hang-up", "garbage"):
                    await asyncio.wait_for(_raw_client(port, kind), 30)
                else:
                    await asyncio.wait_for(_netdicom_client(port, kind), 30)
            except Exception as exc:  # counted and reported, the soak goes on
                key = f"{kind}: {type(exc).__name__}"
                failures[key] = failures.get(key, 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(one(kind) for kind in kinds))
    seconds = time.perf_counter() - started
    return {
        "seconds": round(seconds, 2),
        "per_second": round(count / seconds, 1),
        "mix": {k: kinds.count(k) for k in MIX},
        "failures": failures,
    }


class Child:
    def __init__(self, directory: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve-child", str(directory)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())

    def stats(self) -> dict[str, int]:
        assert self.proc.stdout is not None
        self.proc.send_signal(signal.SIGUSR1)
        result: dict[str, int] = json.loads(self.proc.stdout.readline())
        return result

    def settled(self, baseline: dict[str, int], wait: float) -> dict[str, int]:
        """Stats once tasks and fds are back to the baseline (or after `wait` seconds)."""
        deadline = time.monotonic() + wait
        while True:
            stats = self.stats()
            back = stats["tasks"] <= baseline["tasks"] and stats["fds"] <= baseline["fds"]
            if back or time.monotonic() > deadline:
                return stats
            time.sleep(0.2)

    def stop(self) -> int:
        self.proc.terminate()
        return self.proc.wait(15)


def soak(count: int, concurrency: int, seed: int = 1) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        child = Child(Path(tmp))
        try:
            # Warm up (imports, caches, the first allocations), then take the baseline.
            asyncio.run(_drive(child.port, 30, concurrency, seed + 1))
            time.sleep(0.3)
            baseline = child.settled(child.stats(), 5)
            run = asyncio.run(_drive(child.port, count, concurrency, seed))
            after = child.settled(baseline, 10)
            # A C-ECHO still works at the end.
            with socket.create_connection(("127.0.0.1", child.port), 5):
                pass
            asyncio.run(_netdicom_client(child.port, "echo-release"))
        finally:
            code = child.stop()
    return {
        "associations": count,
        "concurrency": concurrency,
        **run,
        "baseline": baseline,
        "after": after,
        "rss_growth_kib": after["rss_kib"] - baseline["rss_kib"],
        "serve_exit": code,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--associations", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--serve-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_child is not None:
        asyncio.run(_serve_child(args.serve_child))
        return 0
    result = soak(args.associations, args.concurrency, args.seed)
    if args.json:
        print(json.dumps(result))
    else:
        b, a = result["baseline"], result["after"]
        print(
            f"soak: {result['associations']} associations ({result['concurrency']} at a time) "
            f"in {result['seconds']} s, {result['per_second']}/s; mix {result['mix']}"
        )
        print(f"  failures: {result['failures'] or 'none'}")
        print(f"  tasks {b['tasks']} -> {a['tasks']}, fds {b['fds']} -> {a['fds']}, ")
        print(
            f"  RSS {b['rss_kib'] / 1024:.1f} MiB -> {a['rss_kib'] / 1024:.1f} MiB "
            f"(growth {result['rss_growth_kib'] / 1024:.2f} MiB)"
        )
    ok = (
        not result["failures"]
        and result["after"]["tasks"] <= result["baseline"]["tasks"]
        and result["after"]["fds"] <= result["baseline"]["fds"]
        and result["rss_growth_kib"] < 10 * 1024
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
