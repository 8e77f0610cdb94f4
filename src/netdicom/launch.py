"""The `netdicom` command's entry point: the first code of ours that runs.

It imports the CLI (most of a start-up's time) under a guard: Ctrl-C in those first
milliseconds exits with 130, as it does later, instead of printing Python's traceback.

The cyclic garbage collector is off while modules load (their objects live as long as the
process: collecting them is wasted work, ~7 ms of a ~110 ms start-up here); `cli.common.run`
turns it back on, after moving everything loaded so far out of its reach (gc.freeze).
"""

from __future__ import annotations

import gc
import sys
import warnings

_INTERRUPTED = 130  # netdicom.cli.exit_codes.ExitCode.INTERRUPTED (not imported: it is the CLI)


def main() -> None:
    gc.disable()
    # pydicom warns (UserWarning, with its own file paths) about values it finds invalid: in a
    # peer's data sets, in a query's matching syntax. What matters of those we check and
    # report in our own words; on a command's stderr the rest is noise a peer can cause at
    # will. (Its logger still gets them: --debug shows them.)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"pydicom(\.|$)")
    try:
        from netdicom.cli.app import main as run
    except KeyboardInterrupt:
        sys.stderr.write("netdicom: error: interrupted\n")
        sys.exit(_INTERRUPTED)
    run()
