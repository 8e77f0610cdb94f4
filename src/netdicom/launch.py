"""The `netdicom` command's entry point: the first code of ours that runs.

It imports the CLI (most of a start-up's time) under a guard: Ctrl-C in those first
milliseconds exits with 130, as it does later, instead of printing Python's traceback.
"""

from __future__ import annotations

import sys

_INTERRUPTED = 130  # netdicom.cli.exit_codes.ExitCode.INTERRUPTED (not imported: it is the CLI)


def main() -> None:
    try:
        from netdicom.cli.app import main as run
    except KeyboardInterrupt:
        sys.stderr.write("netdicom: error: interrupted\n")
        sys.exit(_INTERRUPTED)
    run()
