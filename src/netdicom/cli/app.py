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
            "--version",
            help="Print the version and the implementation class UID, and exit.",
            callback=_version,
            is_eager=True,
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


# dcmtk habits (storescu, findscu, getscu, movescu, storescp): when one of these options is in
# a command line that fails as a usage error (2) or bad input (3, "+sd" taken for a file), one
# hint line per option says what netdicom has instead. Hints only: dcmtk's options are not
# emulated (they would be a second syntax to document, test and keep in step).
_WALK = "give folders as PATHs with -r (DICOM files are found by content)"
_SYNTAXES = "store proposes each file's own transfer syntax; get has --ts, serve --prefer-ts"
DCMTK_HINTS: Final = {
    "-aec": "use AET@HOST:PORT or --aec AET",
    "-aet": "use --aet AET",
    "-aem": "use --dest AET (move)",
    "-od": "use --out DIR (get, move) or --dir DIR (serve)",
    "+sd": _WALK,
    "+r": _WALK,
    "-k": "give each key as a KEY=VALUE argument, e.g. netdicom find PEER PatientName='DOE*'",
    "-S": "use --model study (the default)",
    "-P": "use --model patient",
    "+P": "use --listen PORT (move)",
    "-d": "use --debug",
    "+xs": _SYNTAXES,
    "+xe": _SYNTAXES,
    "+xi": _SYNTAXES,
    "-xi": _SYNTAXES,
}


def dcmtk_hints(argv: list[str]) -> list[str]:
    """One hint line per netdicom equivalent of the dcmtk options in `argv` (options with the
    same equivalent, as +sd and +r, share a line), in the order given."""
    by_hint: dict[str, list[str]] = {}
    for arg in dict.fromkeys(a for a in argv if a in DCMTK_HINTS):
        by_hint.setdefault(DCMTK_HINTS[arg], []).append(arg)
    return [f"hint: {' '.join(args)} (dcmtk): {hint}" for hint, args in by_hint.items()]


def main() -> None:
    import sys

    argv = sys.argv[1:]
    try:
        build_app(_invoked(argv))()
    except SystemExit as exc:
        # Usage errors are printed by Typer (click) before it exits: the hint goes after them.
        if exc.code in (2, 3):
            for line in dcmtk_hints(argv):
                sys.stderr.write(line + "\n")
        raise
