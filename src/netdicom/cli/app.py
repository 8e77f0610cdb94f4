"""The `netdicom` Typer application: subcommands are registered here, imported lazily inside."""

from __future__ import annotations

from typing import Annotated

import typer

from netdicom.cli import echo as echo_cmd
from netdicom.cli import find as find_cmd
from netdicom.cli import get as get_cmd
from netdicom.cli import move as move_cmd
from netdicom.cli import serve as serve_cmd
from netdicom.cli import store as store_cmd
from netdicom.cli.exit_codes import EXIT_CODE_HELP

# One example per subcommand in `netdicom --help` (\b keeps click from re-wrapping them).
ROOT_EXAMPLES = """\
\b
Examples:
  netdicom echo PACS@10.0.0.5:104
  netdicom store 127.0.0.1:11112 -r ./study
  netdicom find pacs --level study PatientName='DOE*'
  netdicom get pacs StudyInstanceUID=1.2.3 --out ./retrieved
  netdicom move pacs StudyInstanceUID=1.2.3 --listen 11113 --out ./moved
  netdicom serve --dir ./archive
"""

app = typer.Typer(
    name="netdicom",
    help="Speak DICOM over the network: echo, store, find, get, move and serve.",
    epilog=ROOT_EXAMPLES + "\n" + EXIT_CODE_HELP,
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from netdicom import __version__
        from netdicom.core import uids

        print(f"netdicom {__version__}")
        print(f"implementation class UID {uids.IMPLEMENTATION_CLASS_UID}")
        print(f"implementation version name {uids.IMPLEMENTATION_VERSION_NAME}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", callback=_version, is_eager=True
        ),
    ] = False,
) -> None:
    """Speak DICOM over the network: echo, store, find, get, move and serve."""


app.command(
    "echo",
    help="Check that a peer answers C-ECHO (the DICOM ping).",
    epilog=echo_cmd.EXAMPLES + "\n" + EXIT_CODE_HELP,
)(echo_cmd.echo)
app.command(
    "find",
    help="Query a peer with C-FIND and print the matches.",
    epilog=find_cmd.EXAMPLES + "\n" + EXIT_CODE_HELP,
)(find_cmd.find)
app.command(
    "get",
    help="Retrieve instances with C-GET and store them in a folder.",
    epilog=get_cmd.EXAMPLES + "\n" + EXIT_CODE_HELP,
)(get_cmd.get)
app.command(
    "move",
    help="Have a peer send instances with C-MOVE (to us: --listen).",
    epilog=move_cmd.EXAMPLES + "\n" + EXIT_CODE_HELP,
)(move_cmd.move)
app.command(
    "serve",
    help="Serve a folder: store, query and retrieve.",
    epilog=serve_cmd.EXAMPLES + "\n" + EXIT_CODE_HELP,
)(serve_cmd.serve)
app.command(
    "store",
    help="Send DICOM files to a peer with C-STORE.",
    epilog=store_cmd.EXAMPLES + "\n" + EXIT_CODE_HELP,
)(store_cmd.store)


def main() -> None:
    app()
