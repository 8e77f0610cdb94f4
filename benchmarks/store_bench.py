"""C-STORE throughput: netdicom, dcmtk and pynetdicom as senders and receivers, same data, one run.

    python benchmarks/store_bench.py                  # ct, big, tiny; every pair (several minutes)
    python benchmarks/store_bench.py --sets ct --senders netdicom,dcmtk
    python benchmarks/store_bench.py --quick          # tiny data, a smoke run

Each pair starts a fresh receiver on 127.0.0.1, times the sender process from spawn to exit (what a
user waits for, start-up included), then counts the files that arrived. dcmtk runs with
TCP_NODELAY=1 in its environment on both sides and --max-pdu 131072 (its fast configuration);
pynetdicom with its largest PDU (-pdu 0: unlimited); netdicom with its defaults (serve is durable:
fsync per file; `--no-fsync` gives the like-for-like line against dcmtk's storescp, which does not
fsync). It prints MB/s and files/s per pair and the ratios issue 4 names.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import (
    DCMTK_ENV,
    DCMTK_MAX_PDU,
    OUT_DIR,
    PYNETDICOM,
    Trash,
    count_files,
    fmt_ratio,
    free_port,
    fresh_dir,
    have_dcmtk,
    have_pynetdicom,
    help_text,
    netdicom_cmd,
    page_cache_write_rate,
    ratio,
    run_timed,
    server,
    settle,
    table,
)
from gen_data import DATA_DIR, DataSet, ensure

from netdicom.services.store_scu import DEFAULT_WINDOW

QUICK_SCALE = 0.02


@dataclass(frozen=True, slots=True)
class Receiver:
    name: str
    ae_title: str
    argv: Callable[[Path, int], list[str]]
    env: dict[str, str] | None = None
    # netdicom serve stores `.dcm` files under its layout; dcmtk and pynetdicom name files
    # MODALITY.UID, flat.
    suffix: str | None = None


@dataclass(frozen=True, slots=True)
class Sender:
    name: str
    argv: Callable[[DataSet, int, str], list[str]]
    env: dict[str, str] | None = None


@dataclass(slots=True)
class Result:
    set: str
    sender: str
    receiver: str
    files: int
    megabytes: float
    arrived: int = 0
    seconds: float | None = None
    returncode: int | None = None
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.seconds is not None and self.returncode == 0 and self.arrived == self.files

    @property
    def files_per_s(self) -> float | None:
        return self.files / self.seconds if self.ok and self.seconds else None

    @property
    def mb_per_s(self) -> float | None:
        return self.megabytes / self.seconds if self.ok and self.seconds else None


def receivers(nd: list[str], no_fsync: bool) -> dict[str, Receiver]:
    found = {
        "netdicom": Receiver(
            "netdicom",
            "NETDICOM",
            lambda d, p: [*nd, "serve", "--dir", str(d), "--port", str(p), "--aet", "NETDICOM"],
            suffix=".dcm",
        ),
        "dcmtk": Receiver(
            "dcmtk",
            "STORESCP",
            lambda d, p: [
                "storescp",
                "-aet",
                "STORESCP",
                "-pdu",
                DCMTK_MAX_PDU,
                "-od",
                str(d),
                str(p),
            ],
            env=DCMTK_ENV,
        ),
        "pynetdicom": Receiver(
            "pynetdicom",
            "STORESCP",
            lambda d, p: [
                *PYNETDICOM,
                "storescp",
                str(p),
                "-aet",
                "STORESCP",
                "-pdu",
                "0",
                "-od",
                str(d),
                "-ba",
                "127.0.0.1",
            ],
        ),
    }
    if no_fsync:
        found["netdicom --no-fsync"] = Receiver(
            "netdicom --no-fsync",
            "NETDICOM",
            lambda d, p: [
                *nd,
                "serve",
                "--dir",
                str(d),
                "--port",
                str(p),
                "--aet",
                "NETDICOM",
                "--no-fsync",
            ],
            suffix=".dcm",
        )
    return found


def senders(nd: list[str], parallel: bool) -> dict[str, Sender]:
    found = {
        "netdicom": Sender(
            "netdicom",
            lambda data, p, aec: [*nd, "store", f"{aec}@127.0.0.1:{p}", str(data.path), "-r"],
        ),
        "dcmtk": Sender(
            "dcmtk",
            lambda data, p, aec: [
                "storescu",
                "-aec",
                aec,
                "-pdu",
                DCMTK_MAX_PDU,
                "-nh",
                "+sd",
                "+r",
                "127.0.0.1",
                str(p),
                str(data.path),
            ],
            env=DCMTK_ENV,
        ),
        "pynetdicom": Sender(
            "pynetdicom",
            # -cx: only the contexts the files need; -pdu 0: no limit on what it receives.
            lambda data, p, aec: [
                *PYNETDICOM,
                "storescu",
                "127.0.0.1",
                str(p),
                str(data.path),
                "-r",
                "-cx",
                "-pdu",
                "0",
                "-aec",
                aec,
            ],
        ),
    }
    if parallel:
        # -j against a peer that grants no asynchronous operations window (dcmtk, pynetdicom)
        # is what --window 1 shows; with the window granted one association already overlaps.
        for name, extra in (
            ("netdicom -j 4", ["-j", "4"]),
            ("netdicom --window 1", ["--window", "1"]),
            ("netdicom -j 4 --window 1", ["-j", "4", "--window", "1"]),
        ):
            found[name] = Sender(
                name,
                lambda data, p, aec, extra=extra: [
                    *nd,
                    "store",
                    f"{aec}@127.0.0.1:{p}",
                    str(data.path),
                    "-r",
                    *extra,
                ],
            )
    return found


def run_pair(
    data: DataSet, sender: Sender, receiver: Receiver, work: Path, trash: Trash | None = None
) -> Result:
    result = Result(data.name, sender.name, receiver.name, len(data.files), data.megabytes)
    tag = f"{data.name}.{sender.name}.{receiver.name}".replace(" ", "").replace("--", "-")
    directory = fresh_dir(work / "recv" / tag)
    port = free_port()
    settle()
    try:
        with server(
            receiver.argv(directory, port),
            port,
            work / "logs" / f"{tag}.server.log",
            env=receiver.env,
        ) as proc:
            run = run_timed(
                sender.argv(data, port, receiver.ae_title),
                work / "logs" / f"{tag}.sender.log",
                env=sender.env,
            )
            result.seconds = run.seconds
            result.returncode = run.returncode
            result.arrived = count_files(directory, receiver.suffix)
            if proc.poll() is not None:
                result.note = f"receiver exited with {proc.returncode}"
            elif run.returncode != 0:
                result.note = (
                    f"sender exit code {run.returncode}; see {work / 'logs' / tag}.sender.log"
                )
            elif result.arrived != result.files:
                result.note = f"{result.files - result.arrived} files missing"
    except RuntimeError as exc:
        result.note = str(exc).splitlines()[0]
    finally:
        if trash is not None:
            trash.put(directory)
        else:
            fresh_dir(directory).rmdir()
    return result


def probe_serve(nd: list[str], data: DataSet, work: Path) -> str | None:
    """None when `netdicom serve` stores a file sent by dcmtk or pynetdicom, else why not."""
    one = DataSet(
        data.name, data.scale, data.files[0], data.files[:1], data.files[0].stat().st_size
    )
    receiver = receivers(nd, no_fsync=False)["netdicom"]
    if have_dcmtk():
        sender = senders(nd, parallel=False)["dcmtk"]
    elif have_pynetdicom():
        sender = senders(nd, parallel=False)["pynetdicom"]
    else:
        return "neither dcmtk nor pynetdicom is installed to probe it"
    result = run_pair(one, sender, receiver, work / "probe")
    if result.ok:
        return None
    return f"a {sender.name} storescu of one file left {result.arrived} files ({result.note or 'rejected?'})"


def plan(
    sets: Sequence[str],
    wanted_senders: Sequence[str],
    wanted_receivers: Sequence[str],
    available_s: dict[str, Sender],
    available_r: dict[str, Receiver],
) -> list[tuple[str, str, str]]:
    pairs: list[tuple[str, str, str]] = []
    for name in sets:
        for s in wanted_senders:
            if s not in available_s or s.startswith("netdicom "):
                continue
            for r in wanted_receivers:
                if r in available_r and r != "netdicom --no-fsync":
                    pairs.append((name, s, r))
        # The like-for-like line against dcmtk (whose storescp does not fsync).
        if (
            "netdicom" in available_s
            and "netdicom --no-fsync" in available_r
            and "netdicom" in wanted_senders
        ):
            pairs.append((name, "netdicom", "netdicom --no-fsync"))
        if name == "ct" and "netdicom -j 4" in available_s and "netdicom" in available_r:
            for sender in ("netdicom -j 4", "netdicom --window 1", "netdicom -j 4 --window 1"):
                if sender in available_s:
                    pairs.append((name, sender, "netdicom"))
    return pairs


def in_round(
    pairs: list[tuple[str, str, str]], number: int, rounds: int
) -> list[tuple[str, str, str]]:
    """The pairs of round `number` (from 1): sets in order, each set's pairs rotated so that a
    pair runs at a different point of its set in each round, and no pair is always the first
    after the pause between sets. With a fixed order, `-j 4` (sixth in its set) came out at
    0.54x and 0.73x of `-j 1` (first) in two runs, where alternating the two gave 1.0x: on this
    VM synced writes slow down as a set's pairs fill space not written lately (see Trash)."""
    ordered: list[tuple[str, str, str]] = []
    for name in dict.fromkeys(pair[0] for pair in pairs):
        group = [pair for pair in pairs if pair[0] == name]
        shift = (number - 1) * len(group) // rounds
        ordered += group[shift:] + group[:shift]
    return ordered


def median_result(tries: list[Result]) -> Result:
    """One pair over several rounds: the median time; a failed round fails the pair."""
    failed = [t for t in tries if not t.ok]
    if failed:
        return failed[0]
    ordered = sorted(tries, key=lambda t: t.seconds or 0.0)
    return ordered[len(ordered) // 2]


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def ratio_lines(results: list[Result], sets: Sequence[str]) -> list[str]:
    by = {(r.set, r.sender, r.receiver): r for r in results}

    def rate(name: str, sender: str, receiver: str) -> float | None:
        found = by.get((name, sender, receiver))
        return found.files_per_s if found else None

    goals_vs_dcmtk = {"ct": 1.0, "big": 1.0, "tiny": 0.8}
    goals_vs_pyn = {"ct": 5.0, "tiny": 5.0}
    lines = []
    for name in sets:
        nd = rate(name, "netdicom", "netdicom")
        dc = rate(name, "dcmtk", "dcmtk")
        py = rate(name, "pynetdicom", "pynetdicom")
        # (what is compared, numerator, denominator, goal, remark)
        rows: list[tuple[str, float | None, float | None, float | None, str]] = [
            ("netdicom → netdicom vs dcmtk → dcmtk", nd, dc, goals_vs_dcmtk.get(name), ""),
            (
                "netdicom → netdicom --no-fsync vs dcmtk → dcmtk",
                rate(name, "netdicom", "netdicom --no-fsync"),
                dc,
                None,
                "like for like: no fsync on either side",
            ),
            ("netdicom → netdicom vs pynetdicom → pynetdicom", nd, py, goals_vs_pyn.get(name), ""),
            (
                "netdicom → dcmtk vs dcmtk → dcmtk (sender alone)",
                rate(name, "netdicom", "dcmtk"),
                dc,
                None,
                "",
            ),
            (
                "dcmtk → netdicom vs dcmtk → dcmtk (receiver alone)",
                rate(name, "dcmtk", "netdicom"),
                dc,
                None,
                "",
            ),
            ("dcmtk → dcmtk vs pynetdicom → pynetdicom", dc, py, None, ""),
        ]
        if name == "ct":
            w1 = rate(name, "netdicom --window 1", "netdicom")
            rows += [
                (
                    "netdicom -j 4 vs -j 1 (→ netdicom)",
                    rate(name, "netdicom -j 4", "netdicom"),
                    nd,
                    1.5,
                    "",
                ),
                (
                    "netdicom -j 4 vs -j 1, both --window 1",
                    rate(name, "netdicom -j 4 --window 1", "netdicom"),
                    w1,
                    1.5,
                    "a peer that grants no window, as dcmtk",
                ),
                (f"netdicom window {DEFAULT_WINDOW} vs --window 1 (→ netdicom)", nd, w1, None, ""),
            ]
        for label, a, b, goal, remark in rows:
            text = f"  {name:5} {label + ':':<53}{fmt_ratio(ratio(a, b), goal)}"
            lines.append(f"{text} ({remark})" if remark else text)
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sets", default=None, help="comma-separated: ct,big,tiny (default: all; --quick: ct)"
    )
    parser.add_argument("--senders", default="netdicom,dcmtk,pynetdicom")
    parser.add_argument("--receivers", default="netdicom,dcmtk,pynetdicom")
    parser.add_argument(
        "--scale", type=float, default=None, help="data scale (default 1; --quick: 0.02)"
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run on tiny data")
    parser.add_argument(
        "--data", type=Path, default=DATA_DIR, help="data root (default: benchmarks/data)"
    )
    parser.add_argument(
        "--work", type=Path, default=OUT_DIR / "store", help="receiving folders and logs"
    )
    parser.add_argument(
        "--json", type=Path, default=None, help="also write the results as JSON here"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="run every pair N times, interleaved, and report each pair's median "
        "(default 3; --quick: 1): this VM's disk varies run to run",
    )
    args = parser.parse_args(argv)
    scale = args.scale if args.scale is not None else QUICK_SCALE if args.quick else 1.0
    sets = (args.sets or ("ct" if args.quick else "ct,big,tiny")).split(",")
    wanted_senders = args.senders.split(",")
    wanted_receivers = args.receivers.split(",")
    work: Path = args.work

    nd = netdicom_cmd()
    store_help = help_text([*nd, "store"])
    serve_help = help_text([*nd, "serve"]) or ""
    notes: list[str] = []
    available_s = senders(nd, parallel=store_help is not None and "--associations" in store_help)
    available_r = receivers(nd, no_fsync="--no-fsync" in serve_help)
    if store_help is None:
        notes.append(
            "netdicom store is not available yet (`netdicom store --help` failed): skipping netdicom → * pairs"
        )
        available_s = {k: v for k, v in available_s.items() if not k.startswith("netdicom")}
    elif "--associations" not in store_help:
        notes.append("netdicom store has no -j/--associations yet: skipping the -j 4 line")
    if "--no-fsync" not in serve_help:
        notes.append("netdicom serve has no --no-fsync yet: skipping the like-for-like line")
    if not have_dcmtk():
        notes.append("dcmtk is not installed: skipping its pairs")
        available_s.pop("dcmtk", None)
        available_r.pop("dcmtk", None)
    if not have_pynetdicom():
        notes.append("pynetdicom is not installed: skipping its pairs")
        available_s.pop("pynetdicom", None)
        available_r.pop("pynetdicom", None)

    datasets = {name: ensure(name, scale, args.data) for name in sets}
    if any(r.startswith("netdicom") for r in wanted_receivers):
        why = probe_serve(nd, datasets[sets[0]], work)
        if why is not None:
            notes.append(f"netdicom serve does not store yet ({why}): skipping * → netdicom pairs")
            available_r = {k: v for k, v in available_r.items() if not k.startswith("netdicom")}
    for note in notes:
        print(f"note: {note}", flush=True)

    headers = ["set", "sender", "receiver", "files", "MB", "seconds", "files/s", "MB/s", "check"]
    rows: list[list[str]] = []
    results: list[Result] = []
    warmed: set[str] = set()
    rounds = max(1, args.rounds if args.rounds is not None else 1 if args.quick else 3)
    pairs = plan(sets, wanted_senders, wanted_receivers, available_s, available_r)
    runs: dict[tuple[str, str, str], list[Result]] = {pair: [] for pair in pairs}
    trash = Trash(work / "trash")
    probes: list[str] = []  # page_cache_write_rate before each set: how fast storescp can write
    for number in range(1, rounds + 1):
        if rounds > 1:
            print(f"round {number} of {rounds}", flush=True)
        previous = None
        for name, s, r in in_round(pairs, number, rounds):
            if name != previous:
                trash.empty()  # see Trash: deleted files slow the next minute's receivers
                previous = name
                rate = page_cache_write_rate(work)
                probes.append(f"{name} round {number}: {rate:,.0f}")
                print(f"page cache before {name}: 64 MiB written at {rate:,.0f} MB/s", flush=True)
            data = datasets[name]
            if name not in warmed:
                # Read the set once so the first pair does not pay for a cold page cache.
                for path in data.files:
                    path.read_bytes()
                warmed.add(name)
            result = run_pair(data, available_s[s], available_r[r], work, trash)
            runs[(name, s, r)].append(result)
            print(
                f"{name:5} {s:>14} → {r:<20} {fmt(result.seconds, 3):>8} s  {fmt(result.files_per_s):>8} files/s  {fmt(result.mb_per_s):>7} MB/s  {'ok' if result.ok else 'FAILED: ' + result.note}",
                flush=True,
            )
    trash.empty(pause=False)
    for (name, s, r), tries in runs.items():
        result = median_result(tries)
        results.append(result)
        check = (
            "ok" if result.ok else f"FAILED: {result.arrived}/{result.files} arrived; {result.note}"
        )
        rows.append(
            [
                name,
                s,
                r,
                str(result.files),
                fmt(result.megabytes),
                fmt(result.seconds, 3),
                fmt(result.files_per_s),
                fmt(result.mb_per_s),
                check,
            ]
        )

    print()
    print(
        f"C-STORE throughput (scale {scale:g}; sender wall time from spawn to exit, start-up "
        f"included; median of {rounds} round{'s' if rounds > 1 else ''})"
    )
    print(table(headers, rows, left=3))
    print()
    print("Ratios (files/s, same data, same run):")
    for line in ratio_lines(results, sets):
        print(line)
    print()
    print(
        "Page-cache writes before each set, MB/s (below ~1,000 this VM is refaulting memory it "
        "gave back to its host, and receivers writing through the page cache, as storescp, "
        "slow down; see benchlib.page_cache_write_rate):"
    )
    print("  " + "; ".join(probes))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "scale": scale,
                    "notes": notes,
                    "page_cache_mb_per_s": probes,
                    "results": [asdict(r) for r in results],
                },
                indent=2,
            )
        )
    failed = [r for r in results if not r.ok]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
