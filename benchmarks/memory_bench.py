"""Bounded memory (issue 4): a 1 GB instance received or sent raises peak RSS by less than 64 MB.

    python benchmarks/memory_bench.py                  # a 1024 MiB instance
    python benchmarks/memory_bench.py --size-mb 256    # smaller, same bound
    python benchmarks/memory_bench.py --quick          # 32 MiB, a smoke run

Receiving: a fresh `netdicom serve` gets one instance from dcmtk storescu (pynetdicom if dcmtk is
missing); its peak RSS is VmHWM from /proc/PID/status once the file is stored. Sending: `netdicom
store` sends one instance to dcmtk storescp --ignore (nothing written; serve if dcmtk is missing);
its peak RSS is ru_maxrss from wait4(2). Each is measured with the big instance and with a small one
(same SOP class, 2 frames, ~1 MiB): the difference is what the size of the instance costs.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import (
    DCMTK_ENV,
    DCMTK_MAX_PDU,
    OUT_DIR,
    PYNETDICOM,
    free_port,
    fresh_dir,
    have_dcmtk,
    have_pynetdicom,
    help_text,
    netdicom_cmd,
    peak_rss_kb,
    run_timed,
    server,
    settle,
    table,
)
from gen_data import DATA_DIR, FRAME_BYTES, write_multiframe

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Instance:
    path: Path
    bytes: int


def instance(root: Path, frames: int) -> Instance:
    """A Multi-frame Grayscale Word SC instance of `frames` frames, made once and kept."""
    path = root / "memory" / f"MEM{frames:05d}.dcm"
    sidecar = path.with_suffix(".json")
    if path.exists() and sidecar.exists():
        recorded = json.loads(sidecar.read_text())
        if recorded.get("bytes") == path.stat().st_size:
            return Instance(path, path.stat().st_size)
    sidecar.unlink(missing_ok=True)
    size = write_multiframe(path, ("memory", frames), frames)
    sidecar.write_text(json.dumps({"frames": frames, "bytes": size}))
    return Instance(path, size)


def serve_peak(nd: list[str], inst: Instance, work: Path) -> tuple[int | None, str]:
    """Peak RSS (KiB) of a fresh `netdicom serve` that received `inst`, or None and why."""
    if have_dcmtk():
        sender = ["storescu", "-aec", "NETDICOM", "-pdu", DCMTK_MAX_PDU]
        env: dict[str, str] | None = DCMTK_ENV
        tail = ["127.0.0.1", "{port}", str(inst.path)]
    elif have_pynetdicom():
        sender = [*PYNETDICOM, "storescu", "-aec", "NETDICOM", "-pdu", "0"]
        env = None
        tail = ["127.0.0.1", "{port}", str(inst.path)]
    else:
        return None, "neither dcmtk nor pynetdicom is installed to send"
    directory = fresh_dir(work / "recv" / "serve")
    port = free_port()
    settle()
    argv = [*nd, "serve", "--dir", str(directory), "--port", str(port), "-q"]
    try:
        with server(argv, port, work / "logs" / "serve.log") as proc:
            run = run_timed(
                [*sender, *(t.replace("{port}", str(port)) for t in tail)],
                work / "logs" / "serve-sender.log",
                env=env,
            )
            peak = peak_rss_kb(proc.pid)
        stored = [p for p in directory.rglob("*.dcm") if not p.name.startswith(".")]
        if run.returncode != 0 or len(stored) != 1:
            return None, f"not stored (sender exit {run.returncode}; see {work / 'logs'})"
        if stored[0].stat().st_size < inst.bytes - 4096:
            return None, f"stored file has {stored[0].stat().st_size} bytes of {inst.bytes}"
        return peak, ""
    except RuntimeError as exc:  # serve did not start
        return None, str(exc).splitlines()[0]
    finally:
        fresh_dir(directory).rmdir()


def store_peak(nd: list[str], inst: Instance, work: Path) -> tuple[int | None, str]:
    """Peak RSS (KiB) of `netdicom store` sending `inst`, or None and why."""
    directory = fresh_dir(work / "recv" / "store")
    port = free_port()
    settle()
    if have_dcmtk():
        argv = ["storescp", "-pdu", DCMTK_MAX_PDU, "--ignore", "-od", str(directory), str(port)]
        env: dict[str, str] | None = DCMTK_ENV
    else:
        argv = [*nd, "serve", "--dir", str(directory), "--port", str(port), "-q"]
        env = None
    try:
        with server(argv, port, work / "logs" / "store-receiver.log", env=env):
            run = run_timed(
                [*nd, "store", f"127.0.0.1:{port}", str(inst.path), "-q"],
                work / "logs" / "store.log",
            )
        if run.returncode != 0:
            return None, f"netdicom store exit {run.returncode}: {run.output.strip()[:200]}"
        return run.max_rss_kb, ""
    except RuntimeError as exc:  # the receiver did not start
        return None, str(exc).splitlines()[0]
    finally:
        fresh_dir(directory).rmdir()


def mib(kib: int | None) -> str:
    return "-" if kib is None else f"{kib / 1024:.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--size-mb", type=int, default=None, help="big instance, MiB (default 1024)"
    )
    parser.add_argument(
        "--bound-mb", type=float, default=64.0, help="allowed growth, MiB (default 64)"
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run with a 32 MiB instance")
    parser.add_argument("--check", action="store_true", help="exit 1 when a bound is exceeded")
    parser.add_argument(
        "--data", type=Path, default=DATA_DIR, help="data root (default: benchmarks/data)"
    )
    parser.add_argument(
        "--work", type=Path, default=OUT_DIR / "memory", help="receiving folders and logs"
    )
    args = parser.parse_args(argv)
    size_mb = args.size_mb or (32 if args.quick else 1024)
    frames = max(2, size_mb * MIB // FRAME_BYTES)
    work: Path = args.work
    nd = netdicom_cmd()

    small = instance(args.data, 2)
    big = instance(args.data, frames)
    print(
        f"instances: small {small.bytes / MIB:.1f} MiB, big {big.bytes / MIB:.1f} MiB ({frames} frames)",
        flush=True,
    )

    rows: list[list[str]] = []
    failures = 0
    exceeded = 0
    sides = [("netdicom serve (receives)", serve_peak)]
    if help_text([*nd, "store"]) is None:
        print("note: netdicom store is not available yet: skipping the sending side")
    else:
        sides.append(("netdicom store (sends)", store_peak))
    for label, measure in sides:
        low, why_low = measure(nd, small, work)
        high, why_high = measure(nd, big, work) if low is not None else (None, "")
        if low is None or high is None:
            failures += 1
            why = why_low or why_high
            print(f"{label}: skipped or failed: {why}", flush=True)
            rows.append([label, mib(low), mib(high), "-", f"{args.bound_mb:g}", why[:60]])
            continue
        growth = (high - low) / 1024
        verdict = "met" if growth < args.bound_mb else "NOT met"
        exceeded += growth >= args.bound_mb
        print(
            f"{label}: peak RSS {mib(low)} MiB with the small instance, {mib(high)} MiB with the big one: {growth:+.1f} MiB ({verdict})",
            flush=True,
        )
        rows.append([label, mib(low), mib(high), f"{growth:+.1f}", f"{args.bound_mb:g}", verdict])

    print()
    print(
        f"Peak RSS, small ({small.bytes / MIB:.1f} MiB) vs big ({big.bytes / MIB:.0f} MiB) instance, in MiB"
    )
    print(table(["process", "small", "big", "growth", "bound", "goal"], rows))
    if failures:
        return 1
    return 1 if args.check and exceeded else 0


if __name__ == "__main__":
    sys.exit(main())
