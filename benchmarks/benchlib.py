"""What the benchmark scripts share: the commands of each tool, servers as processes, timing.

Benchmarks are scripts, not timed tests: they run real processes on 127.0.0.1 and print what they
measured beside dcmtk and pynetdicom in the same run. Nothing here asserts a speed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
DATA_DIR = BENCH_DIR / "data"  # git-ignored
OUT_DIR = BENCH_DIR / "out"  # git-ignored: receiving folders and server logs

PYTHON = sys.executable
PYNETDICOM = [PYTHON, "-m", "pynetdicom"]


def _dcmtk_first() -> None:
    # pynetdicom 3 puts scripts named storescp, storescu, echoscu, ... beside this interpreter:
    # with the venv activated, "dcmtk" figures would be pynetdicom's. Drop that folder from
    # PATH; Python and netdicom are run by full path.
    here = Path(PYTHON).parent
    with contextlib.suppress(OSError), (here / "storescu").open("rb") as script:
        if script.read(2) == b"#!":
            path = os.environ.get("PATH", "").split(os.pathsep)
            os.environ["PATH"] = os.pathsep.join(d for d in path if Path(d) != here)


_dcmtk_first()
# dcmtk as shipped waits on Nagle's algorithm (40x slower on small objects); TCP_NODELAY=1 in its
# environment and its largest PDU are its fast configuration, the one we compare against.
DCMTK_ENV = {**os.environ, "TCP_NODELAY": "1"}
DCMTK_MAX_PDU = "131072"


def netdicom_cmd() -> list[str]:
    """The `netdicom` console script beside this interpreter, as a user runs it."""
    script = Path(PYTHON).parent / "netdicom"
    if script.exists():
        return [str(script)]
    found = shutil.which("netdicom")
    return [found] if found else [PYTHON, "-m", "netdicom"]


def have(tool: str) -> bool:
    return shutil.which(tool) is not None


def have_dcmtk() -> bool:
    return have("storescp") and have("storescu") and have("echoscu")


def have_pynetdicom() -> bool:
    try:
        import pynetdicom  # noqa: F401
    except ImportError:
        return False
    return True


def help_text(argv: Sequence[str]) -> str | None:
    """The `--help` output of a command, or None when the command does not exist."""
    try:
        result = subprocess.run(
            [*argv, "--help"], capture_output=True, text=True, timeout=30, check=False
        )
    except OSError:
        return None
    if result.returncode != 0:
        return None
    return result.stdout + result.stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"server exited with {proc.returncode} before listening:\n{tail(log)}"
            )
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.02)
    raise RuntimeError(f"nothing listening on port {port} after {timeout} s:\n{tail(log)}")


def tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


@contextlib.contextmanager
def server(
    argv: Sequence[str], port: int, log: Path, *, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a listening peer with its output in `log`; stop it afterwards.

    Output goes to a file, not a pipe: a chatty server writing to a pipe nobody drains would block
    and the benchmark would measure that.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        proc = subprocess.Popen(list(argv), stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            _wait_for_port(port, proc, log, timeout=30.0)
            yield proc
        finally:
            stop(proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass(frozen=True, slots=True)
class Run:
    """One finished client process: exit code, wall time, peak RSS, what it printed."""

    returncode: int
    seconds: float
    max_rss_kb: int
    output: str


def run_timed(
    argv: Sequence[str], log: Path, *, env: dict[str, str] | None = None, timeout: float = 3600.0
) -> Run:
    """Run a client to completion; wall time from spawn to exit, peak RSS from wait4(2)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(list(argv), stdout=out, stderr=subprocess.STDOUT, env=env)
        # A blocking wait4 on this very child: exact exit time, and its rusage holds the peak
        # RSS (ru_maxrss, KiB on Linux). A timer kills a child that overruns.
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            killer.cancel()
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
    return Run(proc.returncode, seconds, usage.ru_maxrss, log.read_text(errors="replace"))


def peak_rss_kb(pid: int) -> int:
    """VmHWM of a running process (its peak resident set), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmHWM for pid {pid}")


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def count_files(directory: Path, suffix: str | None = None) -> int:
    """Regular files under `directory`, skipping hidden ones (temporary files, indexes)."""
    total = 0
    for _root, dirs, files in os.walk(directory):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if name.startswith("."):
                continue
            if suffix is None or name.endswith(suffix):
                total += 1
    return total


def fresh_dir(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


class Trash:
    """Received folders put aside during a set's pairs and deleted between sets, followed by a
    pause.

    Why: on ext4 without a journal (this VM's disk), allocating an inode skips every inode
    deleted in the last 60 s (300 s while its inode table block is not yet written back),
    reading the inode table for each (fs/ext4/ialloc.c, recently_deleted(), RECENTCY_MIN and
    RECENTCY_DIRTY). Every file created then scans past all of them, so deleting one pair's
    files before the next made that pair's receiver, whichever it was, slower: 22 % of serve's
    CPU in one profile, dcmtk -> dcmtk on `tiny` ranged 0.7-2.3 s, and the first pair after a
    deletion paid more than the later ones. Folders are renamed aside instead (cheap) and
    deleted when the set changes, then the pause lets those inodes age out. Keeping every folder
    until the run ends was tried once and is no better: from its second round on, every pair
    into serve on `big` ran at 210-260 MB/s (570-740 in the run before it)."""

    GRACE = 61.0  # s: ext4's window (after a sync, so the inode table blocks are clean)
    RESERVE = 4 << 30  # bytes of free space always left

    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, directory: Path) -> None:
        size = sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())
        if shutil.disk_usage(directory).free < self.RESERVE + size:
            shutil.rmtree(directory)
            self.empty()
            return
        self.root.mkdir(parents=True, exist_ok=True)
        directory.rename(self.root / f"{len(list(self.root.iterdir()))}-{directory.name}")

    def empty(self, pause: bool = True) -> None:
        """Delete what was put aside (and any leftovers of an earlier run), then pause."""
        if self.root.exists() and any(self.root.iterdir()):
            shutil.rmtree(self.root)
            if pause:
                os.sync()
                time.sleep(self.GRACE)


def page_cache_write_rate(directory: Path, mib: int = 64) -> float:
    """MB/s of writing `mib` MiB into the page cache of a new file in `directory` (then deleted).

    Why it is printed: on this VM, writing into the page cache ran at 0.3-0.6 GB/s at some times
    and 2-5 GB/s at others, and dcmtk -> dcmtk on `ct` followed it (0.75-1.2 s against
    0.39-0.51 s; storescp writes through the page cache, and most of its CPU is that copy).
    It was fast while memory was full of cached pages to reuse, slow once much of it had been
    free for a while: this kernel hands free memory back to its host (free page reporting is on
    its command line), and the likely cost is a fault on the host for each page touched again.
    serve's large instances are written with O_DIRECT from buffers it reuses, so the ratios
    move with this rate: it is shown with the results."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / ".page-cache-probe"
    chunk = bytes(1 << 20)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        start = time.perf_counter()
        for _ in range(mib):
            os.write(fd, chunk)
        seconds = time.perf_counter() - start
    finally:
        os.close(fd)
        path.unlink()
    return mib * (1 << 20) / 1e6 / seconds


def settle() -> None:
    """Flush what earlier runs left dirty in the page cache so it is not charged to the next."""
    os.sync()


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def fmt_ratio(value: float | None, goal: float | None = None) -> str:
    if value is None:
        return "n/a"
    text = f"{value:.2f}x"
    if goal is not None:
        text += f" (goal >= {goal:g}x: {'met' if value >= goal else 'NOT met'})"
    return text


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, left: int = 1) -> str:
    """A plain-text table: the first `left` columns aligned left, the others right."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i < left else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])
