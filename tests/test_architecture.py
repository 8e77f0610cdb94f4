"""The package layout of DESIGN.md §1, kept by a test: imports point inward only, and the
echo path stays free of heavy imports so `netdicom echo` starts fast."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "netdicom"

# package -> the netdicom packages it may import (besides itself)
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "transport": {"core"},
    "archive": {"core"},
    "services": {"core", "transport", "archive", "config"},
    "render": {"core", "transport", "services", "archive", "config"},
    "cli": {"core", "transport", "services", "archive", "render", "config"},
    "config": {"core", "services"},
}
# third-party packages a layer may import
THIRD_PARTY: dict[str, set[str]] = {
    "core": {"pydicom"},
    "transport": set(),
    "archive": {"pydicom"},
    "services": {"pydicom"},
    "render": {"rich", "pydicom"},
    "cli": {"typer", "rich", "pydicom", "click"},
    "config": set(),
}
KNOWN_THIRD_PARTY = {"pydicom", "rich", "typer", "click", "numpy"}


def _layer(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".py") if len(rel.parts) > 1 or rel.stem == "config" else ""


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_imports_point_inward() -> None:
    problems = []
    for path in sorted(SRC.rglob("*.py")):
        layer = _layer(path)
        if layer not in ALLOWED:
            continue
        for name in _imports(path):
            top, _, rest = name.partition(".")
            if top == "netdicom":
                target = rest.partition(".")[0]
                if target and target != layer and target not in ALLOWED[layer]:
                    problems.append(f"{path.relative_to(SRC)} imports {name}")
            elif top in KNOWN_THIRD_PARTY and top not in THIRD_PARTY[layer]:
                problems.append(f"{path.relative_to(SRC)} imports {name}")
    assert not problems, "\n".join(problems)


def test_core_has_no_io() -> None:
    forbidden = {"socket", "asyncio", "threading", "time", "selectors", "ssl", "subprocess"}
    problems = [
        f"{path.relative_to(SRC)} imports {name}"
        for path in sorted((SRC / "core").rglob("*.py"))
        for name in _imports(path)
        if name.partition(".")[0] in forbidden
    ]
    assert not problems, "\n".join(problems)


def test_echo_path_imports_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "import netdicom.cli.app, netdicom.services.echo, netdicom.services.session\n"
        "import netdicom.transport.client\n"
        "heavy = ('pydicom', 'rich', 'sqlite3', 'numpy')\n"
        "# Messages echo does not use load when first named (core/dimse/messages.py).\n"
        "lazy = ('netdicom.core.dimse.messages_store', 'netdicom.core.dimse.messages_qr',\n"
        "        'netdicom.transport.faults')\n"
        "print(sorted(m for m in heavy + lazy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_version_names_implementation_class_uid() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "netdicom", "--version"], capture_output=True, text=True
    )
    assert out.returncode == 0
    assert "netdicom 0." in out.stdout
    assert "2.25." in out.stdout


def test_a_subcommand_builds_only_itself() -> None:
    # Start-up: `netdicom echo ...` must not make Typer inspect (or import) the other five.
    code = (
        "import sys\n"
        "sys.argv = ['netdicom', 'echo', '--help']\n"
        "from netdicom.cli.app import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "others = ('find', 'get', 'move', 'serve', 'store')\n"
        "print(sorted(n for n in others if f'netdicom.cli.{n}' in sys.modules), file=sys.stderr)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "Check that a peer answers C-ECHO" in out.stdout
    assert out.stderr.strip().splitlines()[-1] == "[]"
    # The whole app still has all six (root help, completions, man pages).
    root = subprocess.run(
        [sys.executable, "-m", "netdicom", "--help"], capture_output=True, text=True, check=True
    )
    for name in ("echo", "find", "get", "move", "serve", "store"):
        assert f"  {name} " in root.stdout


def test_the_collector_is_back_on_once_a_command_runs() -> None:
    # netdicom.launch turns the cyclic GC off while the CLI imports; run() turns it back on.
    code = (
        "import gc, sys\n"
        "sys.argv = ['netdicom', 'echo', '127.0.0.1:1', '-q', '--timeout', '2']\n"
        "import netdicom.cli.common as common\n"
        "seen = []\n"
        "original = common.run\n"
        "def spy(*args, **kwargs):\n"
        "    seen.append(gc.isenabled())\n"
        "    try:\n"
        "        return original(*args, **kwargs)\n"
        "    finally:\n"
        "        seen.append(gc.isenabled())\n"
        "common.run = spy\n"
        "import netdicom.cli.echo\n"
        "netdicom.cli.echo.run = spy\n"
        "from netdicom.launch import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(seen, gc.get_freeze_count() > 0, file=sys.stderr)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stderr.strip().splitlines()[-1] == "[False, True] True"
