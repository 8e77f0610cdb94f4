"""The `netdicom` Typer application: subcommands are registered here, imported lazily inside\n(and only the one a command line names is built)."""

from __future__ import annotations

from typing import Annotated, Final

import typer

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

# Subcommands: name -> (module under netdicom.cli, function, one-line help). A command line
# that names one builds only that one: Typer inspects every registered function's signature
# and type hints on each run (about 25 ms for all six here), and their modules import too.
SUBCOMMANDS: Final = {
    "echo": ("echo", "echo", "Check that a peer answers C-ECHO (the DICOM ping)."),
    "find": ("find", "find", "Query a peer with C-FIND and print the matches."),
    "get": ("get", "get", "Retrieve instances with C-GET and store them in a folder."),
    "move": ("move", "move", "Have a peer send instances with C-MOVE (to us: --listen)."),
    "serve": ("serve", "serve", "Serve a folder: store, query and retrieve."),
    "store": ("store", "store", "Send DICOM files to a peer with C-STORE."),
}


def _version(value: bool) -> None:
    if value:
        from netdicom import __version__
        from netdicom.core import uids

        print(f"netdicom {__version__}")
        print(f"implementation class UID {uids.IMPLEMENTATION_CLASS_UID}")
        print(f"implementation version name {uids.IMPLEMENTATION_VERSION_NAME}")
        raise typer.Exit(0)


def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", callback=_version, is_eager=True
        ),
    ] = False,
) -> None:
    """Speak DICOM over the network: echo, store, find, get, move and serve."""


def build_app(only: str | None = None) -> typer.Typer:
    """The `netdicom` app with every subcommand, or with `only` that one."""
    import importlib

    built = typer.Typer(
        name="netdicom",
        help="Speak DICOM over the network: echo, store, find, get, move and serve.",
        epilog=ROOT_EXAMPLES + "\n" + EXIT_CODE_HELP,
        no_args_is_help=True,
        add_completion=False,
        rich_markup_mode=None,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    built.callback()(_root)
    for name, (module_name, function, help_text) in SUBCOMMANDS.items():
        if only is not None and name != only:
            continue
        module = importlib.import_module(f"netdicom.cli.{module_name}")
        built.command(name, help=help_text, epilog=module.EXAMPLES + "\n" + EXIT_CODE_HELP)(
            getattr(module, function)
        )
    return built


def _invoked(argv: list[str]) -> str | None:
    """The subcommand `argv` names, when it names one before anything else (no root option
    such as --help or --version, which want the whole app)."""
    if argv and argv[0] in SUBCOMMANDS:
        return argv[0]
    return None


def __getattr__(name: str) -> typer.Typer:
    # `from netdicom.cli.app import app`: the whole app (docgen, tests), built on demand.
    if name == "app":
        return build_app()
    raise AttributeError(name)


def main() -> None:
    import sys

    build_app(_invoked(sys.argv[1:]))()
