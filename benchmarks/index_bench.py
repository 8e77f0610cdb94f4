"""The archive index at scale (issue 5): query time with 100 000 instances indexed, and what
indexing costs store throughput.

1. Query: an index of N synthetic instances (default 100 000: 1000 studies of 4 series of 25
   instances, 500 patients) is filled in batches; then study-level queries (exact UID, patient
   name wildcard, one-month date range, every study) are timed to their last match, with the
   default return keys of `netdicom find` and the computed attributes. Goal: < 100 ms.
   Also: the cost of one `Index.add` (one transaction, as the store hook does it).
2. Store: dcmtk storescu sends the `ct` set to `netdicom serve` as shipped (index hook on) and to
   the same server with the hook removed; the throughput ratio is the cost of indexing.
   Goal: < 10 %. The per-file cost of the hook alone is measured in process too.

    .venv/bin/python benchmarks/index_bench.py [--instances N] [--scale S] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import DCMTK_ENV, free_port, have_dcmtk, netdicom_cmd, server
from gen_data import ensure

from netdicom.archive.index import Index, InstanceSummary, Query
from netdicom.archive.matching import Key, Level, Model
from netdicom.archive.rebuild import read_summary

OUT = Path(__file__).resolve().parent / "out" / "index_bench"
CT = "1.2.840.10008.5.1.4.1.1.2"
MODALITIES = ("CT", "MR", "PT", "US")


def _summary(i: int, per_study: int) -> InstanceSummary:
    study = i // per_study
    series = (i % per_study) // (per_study // 4)
    patient = study // 2
    day = 1 + study % 28
    month = 1 + (study // 28) % 12
    year = 2022 + study // (28 * 12)
    values = {
        0x00100010: f"NAME{patient}^GIVEN",
        0x00100020: f"PID{patient:06d}",
        0x00100030: "19700101",
        0x00100040: "O",
        0x0020000D: f"1.2.826.0.1.3680043.99.{study}",
        0x00080020: f"{year}{month:02d}{day:02d}",
        0x00080030: "101500",
        0x00080050: f"ACC{study}",
        0x00200010: str(study),
        0x00081030: "BENCH STUDY",
        0x0020000E: f"1.2.826.0.1.3680043.99.{study}.{series}",
        0x00080060: MODALITIES[series % 4],
        0x00200011: str(series + 1),
        0x00080018: f"1.2.826.0.1.3680043.99.{study}.{series}.{i}",
        0x00080016: CT,
        0x00200013: str(i % per_study + 1),
    }
    return InstanceSummary(f"synthetic/{i}.dcm", 1000, 0, "1.2.840.10008.1.2.1", values)


def bench_queries(instances: int, runs: int) -> None:
    root = OUT / "query"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    index = Index(root)
    index.open()
    per_study = 100
    started = time.perf_counter()
    for start in range(0, instances, 1000):
        index.add_many([_summary(i, per_study) for i in range(start, min(start + 1000, instances))])
    fill = time.perf_counter() - started
    print(f"filled {instances} instances in {fill:.1f} s ({instances / fill:,.0f}/s in batches)")
    extra = 1000
    started = time.perf_counter()
    for i in range(instances, instances + extra):
        index.add(_summary(i, per_study))
    single = (time.perf_counter() - started) / extra
    print(f"Index.add, one transaction each: {single * 1e6:.0f} µs per instance")
    print(f"index file: {index.path.stat().st_size / 1e6:.0f} MB; {index.counts()}")

    wanted = frozenset(
        {0x00100010, 0x00100020, 0x00080020, 0x00080030, 0x00080050, 0x00080061, 0x00081030,
         0x00201208, 0x0020000D}
    )  # fmt: skip
    queries = {
        "exact StudyInstanceUID": (Key(0x0020000D, "UI", "1.2.826.0.1.3680043.99.500"),),
        "PatientName=NAME12*": (Key(0x00100010, "PN", "NAME12*"),),
        "StudyDate one month": (Key(0x00080020, "DA", "20230301-20230331"),),
        "every study": (Key(0x0020000D, "UI", ""),),
    }
    print(f"\nstudy-level queries, median of {runs} (goal < 100 ms):")
    for name, keys in queries.items():
        query = Query(Model.STUDY_ROOT, Level.STUDY, keys, wanted)
        times, count = [], 0
        for _ in range(runs):
            t0 = time.perf_counter()
            count = sum(len(batch) for batch in index.find(query))
            times.append(time.perf_counter() - t0)
        median = statistics.median(times) * 1000
        verdict = "ok" if median < 100 else "OVER"
        print(f"  {name:<26} {count:>5} matches  {median:8.2f} ms  {verdict}")
    index.close()


def bench_hook(files: list[Path]) -> float:
    """Seconds per file of what the store hook does: read the file's summary, one add."""
    root = OUT / "hook"
    shutil.rmtree(root, ignore_errors=True)
    (root / "files").mkdir(parents=True)
    for path in files:
        shutil.copy(path, root / "files" / path.name)
    index = Index(root)
    index.open()
    started = time.perf_counter()
    for path in files:
        index.add(read_summary(root, f"files/{path.name}"))
    per_file = (time.perf_counter() - started) / len(files)
    index.close()
    return per_file


def _send(port: int, files: list[Path]) -> float:
    argv = ["storescu", "-aec", "NETDICOM", "-pdu", "131072", "-nh", "127.0.0.1", str(port)]
    started = time.perf_counter()
    subprocess.run([*argv, *map(str, files)], check=True, env=DCMTK_ENV, timeout=600)
    return time.perf_counter() - started


def bench_store(files: list[Path], rounds: int) -> None:
    if not have_dcmtk():
        print("dcmtk storescu not found: store comparison skipped")
        return
    for fsync in (True, False):
        results: dict[bool, list[float]] = {True: [], False: []}
        for round_number in range(rounds):
            # Alternate which variant goes first: the disk's writeback of the previous run
            # would otherwise always slow the same one.
            order = (True, False) if round_number % 2 == 0 else (False, True)
            for indexed in order:
                target = OUT / "store" / f"{'on' if indexed else 'off'}-{fsync}"
                shutil.rmtree(target, ignore_errors=True)
                target.mkdir(parents=True)
                port = free_port()
                argv = (
                    [*netdicom_cmd(), "serve", "--dir", str(target), "--port", str(port), "-q"]
                    if indexed
                    else [sys.executable, __file__, "--serve-without-index", str(target), str(port)]
                )
                if not fsync:
                    argv.append("--no-fsync")
                subprocess.run(["sync"], check=False)
                with server(argv, port, OUT / "serve.log"):
                    results[indexed].append(len(files) / _send(port, files))
        with_index = statistics.median(results[True])
        without = statistics.median(results[False])
        cost = 1 - with_index / without
        mode = "fsync on (default)" if fsync else "--no-fsync"
        print(
            f"\nstore of {len(files)} CT files (dcmtk storescu -> serve, {mode}), median of {rounds}:"
        )
        print(f"  without index {without:7.1f} files/s")
        print(f"  with index    {with_index:7.1f} files/s")
        verdict = "ok" if cost < 0.10 else "OVER"
        print(f"  indexing costs {cost * 100:.1f} % of store throughput (goal < 10 %): {verdict}")


def serve_without_index(directory: str, port: int, fsync: bool) -> None:
    """`netdicom serve` with the index hook removed: the baseline of bench_store."""
    from netdicom.services.serve import ServeApp, ServeConfig

    async def main() -> None:
        app = ServeApp(ServeConfig(directory=Path(directory), port=port, fsync=fsync))
        # Only the index goes: the log line per instance stays, as in serve.
        app.storage.on_placed.remove(app._index_stored)
        app.storage.on_stored.remove(app._schedule_flush)
        await app.server.start()
        await app.server.serve_forever()

    asyncio.run(main())


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--instances", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=20, help="query repetitions")
    parser.add_argument("--scale", type=float, default=0.4, help="of the ct set (0.4: 200 files)")
    parser.add_argument("--rounds", type=int, default=3, help="store runs per variant")
    parser.add_argument("--quick", action="store_true", help="small sizes, seconds")
    parser.add_argument("--no-fsync", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--serve-without-index", nargs=2, metavar=("DIR", "PORT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.serve_without_index:
        serve_without_index(
            args.serve_without_index[0], int(args.serve_without_index[1]), not args.no_fsync
        )
        return 0
    if args.quick:
        args.instances, args.runs, args.scale, args.rounds = 5000, 3, 0.04, 1
    OUT.mkdir(parents=True, exist_ok=True)
    bench_queries(args.instances, args.runs)
    data = ensure("ct", args.scale)
    files = list(data.files)
    per_file = bench_hook(files)
    print(
        f"\nstore hook alone (read summary + one transaction): {per_file * 1e3:.3f} ms per CT file"
    )
    bench_store(files, args.rounds)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
