"""Speed of the basics (issue 2): C-ECHO round trip and `netdicom echo` start-to-exit time.

    python benchmarks/echo_bench.py             # 1000 echoes per pair, 20 start-ups per tool
    python benchmarks/echo_bench.py --quick     # a smoke run

Round trip: `netdicom echo --repeat N` prints the median of its own per-echo timings; dcmtk's
echoscu prints none, so its per-echo time is (wall(--repeat N) - wall(--repeat 1)) / (N - 1),
which removes its start-up and association; pynetdicom is timed by a small script around
`send_c_echo` on one association. Start-up: wall time of one echo process against the same dcmtk
storescp, spawn to exit, median of the runs. dcmtk runs with TCP_NODELAY=1 in its environment.
Goals: netdicom median round trip under 0.2 ms; one `netdicom echo` under 200 ms.
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import (
    DCMTK_ENV,
    OUT_DIR,
    PYNETDICOM,
    PYTHON,
    fmt_ratio,
    free_port,
    fresh_dir,
    have_dcmtk,
    have_pynetdicom,
    median,
    netdicom_cmd,
    ratio,
    run_timed,
    server,
    table,
)

VERIFICATION = "1.2.840.10008.1.1"
# pynetdicom has no repeat option: time send_c_echo on one association ourselves.
PYNETDICOM_ECHOES = textwrap.dedent(
    """
    import statistics, sys, time
    from pynetdicom import AE
    ae = AE(ae_title="PYNETDICOM")
    ae.add_requested_context(sys.argv[4])
    assoc = ae.associate("127.0.0.1", int(sys.argv[1]), ae_title=sys.argv[3])
    if not assoc.is_established:
        sys.exit("association failed")
    times = []
    for i in range(int(sys.argv[2])):
        start = time.perf_counter()
        status = assoc.send_c_echo()
        times.append(time.perf_counter() - start)
        if not status or status.Status != 0:
            sys.exit(f"C-ECHO {i + 1} failed: status {status!r}, aborted {assoc.is_aborted}")
    assoc.release()
    print(f"median {statistics.median(times) * 1000:.3f} ms")
    """
)
MEDIAN = re.compile(r"median ([0-9.]+) ms")


@dataclass(frozen=True, slots=True)
class Peer:
    name: str
    ae_title: str
    argv: Callable[[Path, int], list[str]]
    env: dict[str, str] | None = None


def peers(nd: list[str]) -> dict[str, Peer]:
    found = {
        "netdicom serve": Peer(
            "netdicom serve",
            "NETDICOM",
            lambda d, p: [*nd, "serve", "--dir", str(d), "--port", str(p), "-q"],
        )
    }
    if have_dcmtk():
        found["dcmtk storescp"] = Peer(
            "dcmtk storescp",
            "STORESCP",
            lambda d, p: ["storescp", "-aet", "STORESCP", "-od", str(d), str(p)],
            env=DCMTK_ENV,
        )
    if have_pynetdicom():
        found["pynetdicom echoscp"] = Peer(
            "pynetdicom echoscp",
            "ECHOSCP",
            lambda d, p: [*PYNETDICOM, "echoscp", str(p), "-aet", "ECHOSCP"],
        )
    return found


@contextmanager
def listening(peer: Peer, work: Path) -> Iterator[int]:
    port = free_port()
    tag = peer.name.replace(" ", "-")
    directory = fresh_dir(work / "recv" / tag)
    with server(peer.argv(directory, port), port, work / "logs" / f"{tag}.log", env=peer.env):
        yield port


def netdicom_round_trip(nd: list[str], peer: Peer, port: int, n: int, work: Path) -> float | None:
    run = run_timed(
        [*nd, "echo", f"{peer.ae_title}@127.0.0.1:{port}", "--repeat", str(n)],
        work / "logs" / "netdicom-echo.log",
    )
    found = MEDIAN.search(run.output)
    if run.returncode != 0 or not found:
        print(
            f"  netdicom echo → {peer.name} failed ({run.returncode}): {run.output.strip()[:300]}"
        )
        return None
    return float(found.group(1))


def dcmtk_round_trip(peer: Peer, port: int, n: int, work: Path) -> float | None:
    def wall(repeat: int) -> float | None:
        argv = ["echoscu", "-aec", peer.ae_title, "--repeat", str(repeat), "127.0.0.1", str(port)]
        run = run_timed(argv, work / "logs" / "echoscu.log", env=DCMTK_ENV)
        if run.returncode != 0:
            print(f"  echoscu → {peer.name} failed ({run.returncode}): {run.output.strip()[:300]}")
            return None
        return run.seconds

    many = wall(n)
    ones = [wall(1) for _ in range(5)]
    if many is None or None in ones:
        return None
    one = median([t for t in ones if t is not None])
    return max(many - one, 0.0) / (n - 1) * 1000


def pynetdicom_round_trip(peer: Peer, port: int, n: int, work: Path) -> float | None:
    run = run_timed(
        [PYTHON, "-c", PYNETDICOM_ECHOES, str(port), str(n), peer.ae_title, VERIFICATION],
        work / "logs" / "pynetdicom-echo.log",
    )
    found = MEDIAN.search(run.output)
    if run.returncode != 0 or not found:
        print(f"  pynetdicom → {peer.name} failed ({run.returncode}): {run.output.strip()[:300]}")
        return None
    return float(found.group(1))


def start_to_exit(
    argv: Sequence[str], runs: int, log: Path, env: dict[str, str] | None
) -> float | None:
    times = []
    for _ in range(runs):
        run = run_timed(argv, log, env=env)
        if run.returncode != 0:
            print(f"  {argv[0]} failed ({run.returncode}): {run.output.strip()[:300]}")
            return None
        times.append(run.seconds * 1000)
    return median(times)


def fmt_ms(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--repeat", type=int, default=None, help="echoes per round-trip pair (default 1000)"
    )
    parser.add_argument("--runs", type=int, default=None, help="start-ups per tool (default 20)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 50 echoes, 3 start-ups")
    parser.add_argument(
        "--work", type=Path, default=OUT_DIR / "echo", help="server folders and logs"
    )
    args = parser.parse_args(argv)
    n = args.repeat or (50 if args.quick else 1000)
    runs = args.runs or (3 if args.quick else 20)
    if n < 2 or runs < 1:
        parser.error("--repeat must be at least 2 and --runs at least 1")
    work: Path = args.work
    nd = netdicom_cmd()
    available = peers(nd)
    failures = 0

    # --- Round trip -------------------------------------------------------------------------
    pairs: list[tuple[str, str, Callable[[Peer, int], float | None]]] = [
        (
            "netdicom echo",
            "netdicom serve",
            lambda p, port: netdicom_round_trip(nd, p, port, n, work),
        ),
        (
            "netdicom echo",
            "dcmtk storescp",
            lambda p, port: netdicom_round_trip(nd, p, port, n, work),
        ),
        (
            "netdicom echo",
            "pynetdicom echoscp",
            lambda p, port: netdicom_round_trip(nd, p, port, n, work),
        ),
        ("dcmtk echoscu", "dcmtk storescp", lambda p, port: dcmtk_round_trip(p, port, n, work)),
        ("dcmtk echoscu", "netdicom serve", lambda p, port: dcmtk_round_trip(p, port, n, work)),
        (
            "pynetdicom",
            "pynetdicom echoscp",
            lambda p, port: pynetdicom_round_trip(p, port, n, work),
        ),
        ("pynetdicom", "netdicom serve", lambda p, port: pynetdicom_round_trip(p, port, n, work)),
    ]
    medians: dict[tuple[str, str], float | None] = {}
    rows = []
    for client, peer_name, measure in pairs:
        if peer_name not in available or (client.startswith("dcmtk") and not have_dcmtk()):
            continue
        if client == "pynetdicom" and not have_pynetdicom():
            continue
        try:
            with listening(available[peer_name], work) as port:
                value = measure(available[peer_name], port)
        except RuntimeError as exc:  # the server did not start
            print(f"  {peer_name} did not start: {exc}")
            value = None
        medians[(client, peer_name)] = value
        failures += value is None
        how = "(wall(N) - wall(1)) / (N-1)" if client.startswith("dcmtk") else "median of N"
        rows.append([client, peer_name, str(n), fmt_ms(value), how])
        print(f"round trip {client:>14} → {peer_name:<20} {fmt_ms(value):>8} ms", flush=True)

    # --- Start to exit ----------------------------------------------------------------------
    target = available.get("dcmtk storescp") or available["netdicom serve"]
    startup: dict[str, float | None] = {}
    startup_rows = []
    try:
        with listening(target, work) as port:
            peer_arg = f"{target.ae_title}@127.0.0.1:{port}"
            tools: list[tuple[str, list[str], dict[str, str] | None]] = [
                ("netdicom echo", [*nd, "echo", peer_arg], None)
            ]
            if have_dcmtk():
                tools.append(
                    (
                        "dcmtk echoscu",
                        ["echoscu", "-aec", target.ae_title, "127.0.0.1", str(port)],
                        DCMTK_ENV,
                    )
                )
            if have_pynetdicom():
                tools.append(
                    (
                        "pynetdicom echoscu",
                        [*PYNETDICOM, "echoscu", "127.0.0.1", str(port), "-aec", target.ae_title],
                        None,
                    )
                )
            for name, tool_argv, env in tools:
                value = start_to_exit(
                    tool_argv, runs, work / "logs" / f"{name.replace(' ', '-')}.log", env
                )
                startup[name] = value
                failures += value is None
                startup_rows.append([name, target.name, str(runs), fmt_ms(value, 1)])
                print(
                    f"start to exit {name:>18} → {target.name:<16} {fmt_ms(value, 1):>8} ms",
                    flush=True,
                )
    except RuntimeError as exc:  # the server did not start
        print(f"  {target.name} did not start: {exc}")
        failures += 1

    print()
    print("C-ECHO round trip (one association, TCP_NODELAY=1 for dcmtk)")
    print(table(["client", "server", "N", "median ms", "how"], rows, left=2))
    print()
    print(f"One echo process, spawn to exit (median of {runs})")
    print(table(["client", "server", "runs", "median ms"], startup_rows, left=2))
    print()
    print("Ratios:")
    nd_rt = medians.get(("netdicom echo", "netdicom serve"))
    nd_dc = medians.get(("netdicom echo", "dcmtk storescp"))
    dc_rt = medians.get(("dcmtk echoscu", "dcmtk storescp"))
    py_rt = medians.get(("pynetdicom", "pynetdicom echoscp"))
    goal = "met" if nd_rt is not None and nd_rt < 0.2 else "NOT met"
    print(f"  round trip netdicom → netdicom median {fmt_ms(nd_rt)} ms (goal < 0.2 ms: {goal})")
    print(
        f"  round trip netdicom → dcmtk vs dcmtk → dcmtk (time):       {fmt_ratio(ratio(nd_dc, dc_rt))}"
    )
    print(
        f"  round trip netdicom → netdicom vs dcmtk → dcmtk (time):    {fmt_ratio(ratio(nd_rt, dc_rt))}"
    )
    print(
        f"  round trip pynetdicom → pynetdicom vs netdicom → netdicom: {fmt_ratio(ratio(py_rt, nd_rt))}"
    )
    nd_st = startup.get("netdicom echo")
    goal = "met" if nd_st is not None and nd_st < 200 else "NOT met"
    print(f"  start to exit netdicom echo median {fmt_ms(nd_st, 1)} ms (goal < 200 ms: {goal})")
    print(
        f"  start to exit netdicom echo vs dcmtk echoscu (time):       {fmt_ratio(ratio(nd_st, startup.get('dcmtk echoscu')))}"
    )
    print(
        f"  start to exit pynetdicom echoscu vs netdicom echo (time):  {fmt_ratio(ratio(startup.get('pynetdicom echoscu'), nd_st))}"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
