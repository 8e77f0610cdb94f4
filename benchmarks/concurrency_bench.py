"""Many senders at once (issue 4): 8 concurrent dcmtk storescu processes into one
`netdicom serve`, against one storescu sending the same files. Every file must arrive; the
aggregate throughput of the 8 should not be lower than one sender's.

    .venv/bin/python benchmarks/concurrency_bench.py [--set ct] [--senders 8] [--no-fsync] [--quick]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import count_files, free_port, fresh_dir, have_dcmtk, netdicom_cmd, server, settle
from gen_data import ensure

OUT = Path(__file__).resolve().parent / "out" / "concurrency"
DCMTK_ENV = {**os.environ, "TCP_NODELAY": "1"}


def _storescu(port: int, files: list[Path]) -> list[str]:
    return [
        "storescu", "--max-pdu", "131072", "-aec", "NETDICOM", "127.0.0.1", str(port),
        *map(str, files),
    ]  # fmt: skip


def _run(files: list[Path], senders: int, serve_extra: list[str]) -> tuple[float, int]:
    """Seconds for `senders` storescu processes to send `files` between them; files stored."""
    archive = fresh_dir(OUT / f"archive-{senders}")
    port = free_port()
    argv = [*netdicom_cmd(), "serve", "--dir", str(archive), "--port", str(port), *serve_extra]
    with server(argv, port, OUT / f"serve-{senders}.log"):
        settle()
        shares = [files[i::senders] for i in range(senders)]
        start = time.perf_counter()
        procs = [
            subprocess.Popen(
                _storescu(port, share),
                env=DCMTK_ENV,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for share in shares
            if share
        ]
        codes = [p.wait() for p in procs]
        seconds = time.perf_counter() - start
    stored = count_files(archive, ".dcm")
    if any(codes):
        print(f"  {senders} senders: a storescu exited with {codes}", file=sys.stderr)
    return seconds, stored


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", default="ct", choices=("ct", "tiny"))
    parser.add_argument("--senders", type=int, default=8)
    parser.add_argument("--no-fsync", action="store_true", help="serve with --no-fsync")
    parser.add_argument("--quick", action="store_true", help="a small set, for the smoke test")
    args = parser.parse_args(argv)
    if not have_dcmtk():
        print("dcmtk is not installed: nothing to measure")
        return 0
    data = ensure(args.set, 0.04 if args.quick else 1.0)
    files = sorted(data.files)
    extra = ["--no-fsync"] if args.no_fsync else []
    one_s, one_n = _run(files, 1, extra)
    many_s, many_n = _run(files, args.senders, extra)
    mode = "no fsync" if args.no_fsync else "durable (fsync)"
    print(f"{len(files)} files of set {args.set!r} into netdicom serve, {mode}")
    print(f"  1 storescu:  {one_n}/{len(files)} stored, {len(files) / one_s:8.1f} files/s")
    print(
        f"  {args.senders} storescu:  {many_n}/{len(files)} stored, "
        f"{len(files) / many_s:8.1f} files/s aggregate"
    )
    print(f"  ratio {args.senders} senders / 1 sender: {one_s / many_s:.2f}x (goal >= 1.00x)")
    return 0 if one_n == many_n == len(files) else 1


if __name__ == "__main__":
    raise SystemExit(main())
